//! Keyboard and mouse, from rdev on X11.
//!
//! rdev's listener blocks its own thread; its callback turns raw events
//! into registry events and hands them to the sink, which never blocks:
//!
//! - modifiers are tracked here, because rdev reports Ctrl+C as "c": a key
//!   typed with Ctrl, Alt or Meta held carries a chord such as `ctrl+c`;
//! - the pause hotkey (Ctrl+Alt+Shift+P) toggles pause and is never stored,
//!   so modifier presses are held back until it is clear they are not part
//!   of it;
//! - mouse moves are thinned to a fixed rate (latest wins within a period,
//!   and the last position is always written before a click);
//! - timestamps come from the session's monotonic clock, not rdev's wall
//!   clock;
//! - every key event waits for the focus source's verdict on it, judged at
//!   its own place in the X server's order (see `focus`), before it is
//!   handed over; a withheld key is never stored, only counted in a gap.

use std::time::{Duration, Instant};

use rdev::{Button, EventType, Key};

use super::focus::{KeyMatcher, Verdict};
use crate::event::{Event, EventError, SessionClock, Stamp};
use crate::keymap;
use crate::registry::Kind;

pub const SHIFT: i64 = 1;
pub const CTRL: i64 = 2;
pub const ALT: i64 = 4;
pub const META: i64 = 8;
const HOTKEY_MODS: i64 = SHIFT | CTRL | ALT;

fn modifier_bit(key: Key) -> Option<i64> {
    match key {
        Key::ShiftLeft | Key::ShiftRight => Some(SHIFT),
        Key::ControlLeft | Key::ControlRight => Some(CTRL),
        Key::Alt | Key::AltGr => Some(ALT),
        Key::MetaLeft | Key::MetaRight => Some(META),
        _ => None,
    }
}

/// rdev's name for a key (`KeyA`, `Unknown(65027)`).
pub fn key_name(key: Key) -> String {
    format!("{key:?}")
}

/// The chord text for a key typed with Ctrl, Alt or Meta held.
fn chord(mods: i64, key: Key) -> String {
    let name = key_name(key);
    let base = match name.as_str() {
        n if n.len() == 4 && n.starts_with("Key") => n[3..].to_ascii_lowercase(),
        n if n.len() == 4 && n.starts_with("Num") => n[3..].to_owned(),
        n => n.to_ascii_lowercase(),
    };
    let mut parts = Vec::new();
    for (bit, label) in [
        (CTRL, "ctrl"),
        (ALT, "alt"),
        (SHIFT, "shift"),
        (META, "meta"),
    ] {
        if mods & bit != 0 {
            parts.push(label);
        }
    }
    parts.push(&base);
    parts.join("+")
}

/// What the translator makes of a raw event.
#[derive(Debug, PartialEq)]
pub enum Output {
    Event(Event),
    /// The pause hotkey was pressed.
    TogglePause(Stamp),
}

/// Turns raw rdev events into registry events.
pub struct Translator {
    clock: SessionClock,
    mods: i64,
    /// Non-modifier keys currently down.
    keys_down: Vec<Key>,
    /// Modifier events held back until we know they are not the hotkey.
    held: Vec<Event>,
    /// After the hotkey: swallow key events until every modifier is up.
    swallowing: bool,
    /// The hotkey's own key, whose release is swallowed whenever it comes
    /// (xdotool, for one, releases it after the modifiers).
    swallow_release: Option<Key>,
    pointer: (i64, i64),
    move_every: Duration,
    last_move: Option<Instant>,
    pending_move: Option<Event>,
}

impl Translator {
    pub fn new(clock: SessionClock, mouse_rate_hz: u32) -> Translator {
        Translator {
            clock,
            mods: 0,
            keys_down: Vec::new(),
            held: Vec::new(),
            swallowing: false,
            swallow_release: None,
            pointer: (0, 0),
            move_every: Duration::from_secs(1) / mouse_rate_hz.max(1),
            last_move: None,
            pending_move: None,
        }
    }

    fn key_event(
        &self,
        kind: Kind,
        key: Key,
        text: Option<String>,
        at: Instant,
    ) -> Result<Event, EventError> {
        let name = key_name(key);
        let mut e = Event::new(kind, self.clock.stamp_at(at))
            .with("class", keymap::class_of(&name))?
            .with("mods", self.mods)?
            .with("key", name)?;
        if let Some(t) = text {
            e.set("text", t)?;
        }
        Ok(e)
    }

    fn flush_held(&mut self, out: &mut Vec<Output>) {
        out.extend(self.held.drain(..).map(Output::Event));
    }

    fn flush_move(&mut self, out: &mut Vec<Output>) {
        if let Some(m) = self.pending_move.take() {
            out.push(Output::Event(m));
        }
    }

    /// Writes a held-back mouse move once its period has passed; call when
    /// no raw event arrived for a while.
    pub fn tick(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.pending_move.is_some()
            && self
                .last_move
                .is_none_or(|t| now.duration_since(t) >= self.move_every)
        {
            self.last_move = Some(now);
            self.flush_move(out);
        }
    }

    /// How long until `tick` may have something to do.
    pub fn tick_every(&self) -> Duration {
        self.move_every
    }

    /// Whether a mouse move is held back, waiting for `tick`.
    pub fn has_pending_move(&self) -> bool {
        self.pending_move.is_some()
    }

    pub fn translate(
        &mut self,
        raw: &rdev::Event,
        at: Instant,
        out: &mut Vec<Output>,
    ) -> Result<(), EventError> {
        match raw.event_type {
            EventType::KeyPress(key) => {
                self.flush_move(out);
                if let Some(bit) = modifier_bit(key) {
                    self.mods |= bit;
                    if self.swallowing {
                        return Ok(());
                    }
                    let e = self.key_event(Kind::KeyDown, key, None, at)?;
                    if self.keys_down.is_empty() {
                        self.held.push(e);
                    } else {
                        out.push(Output::Event(e));
                    }
                    return Ok(());
                }
                if key == Key::KeyP && self.mods & HOTKEY_MODS == HOTKEY_MODS {
                    self.held.clear();
                    self.swallowing = true;
                    self.swallow_release = Some(key);
                    out.push(Output::TogglePause(self.clock.stamp_at(at)));
                    return Ok(());
                }
                if self.swallowing {
                    // Any other key ends the hotkey's grace: it is typing.
                    self.swallowing = false;
                }
                self.flush_held(out);
                if !self.keys_down.contains(&key) {
                    self.keys_down.push(key);
                }
                let text = if self.mods & (CTRL | ALT | META) != 0 {
                    Some(chord(self.mods, key))
                } else {
                    raw.name.clone().filter(|n| !n.is_empty())
                };
                out.push(Output::Event(self.key_event(
                    Kind::KeyDown,
                    key,
                    text,
                    at,
                )?));
            }
            EventType::KeyRelease(key) => {
                self.flush_move(out);
                self.keys_down.retain(|k| *k != key);
                if self.swallow_release == Some(key) {
                    self.swallow_release = None;
                    return Ok(());
                }
                if let Some(bit) = modifier_bit(key) {
                    self.mods &= !bit;
                    if self.swallowing {
                        if self.mods == 0 {
                            self.swallowing = false;
                        }
                        return Ok(());
                    }
                    let e = self.key_event(Kind::KeyUp, key, None, at)?;
                    if self.held.is_empty() {
                        out.push(Output::Event(e));
                    } else {
                        self.held.push(e);
                        if self.mods == 0 {
                            // Modifiers tapped alone: not the hotkey.
                            self.flush_held(out);
                        }
                    }
                    return Ok(());
                }
                if self.swallowing {
                    return Ok(());
                }
                out.push(Output::Event(self.key_event(Kind::KeyUp, key, None, at)?));
            }
            EventType::MouseMove { x, y } => {
                self.pointer = (x.round() as i64, y.round() as i64);
                let e = Event::new(Kind::MouseMove, self.clock.stamp_at(at))
                    .with("x", self.pointer.0)?
                    .with("y", self.pointer.1)?;
                let due = self
                    .last_move
                    .is_none_or(|t| at.duration_since(t) >= self.move_every);
                if due {
                    self.pending_move = None;
                    self.last_move = Some(at);
                    self.flush_held(out);
                    out.push(Output::Event(e));
                } else {
                    self.pending_move = Some(e);
                }
            }
            EventType::ButtonPress(b) | EventType::ButtonRelease(b) => {
                self.flush_held(out);
                self.flush_move(out);
                let kind = if matches!(raw.event_type, EventType::ButtonPress(_)) {
                    Kind::MouseDown
                } else {
                    Kind::MouseUp
                };
                let button = match b {
                    Button::Left => "left",
                    Button::Right => "right",
                    Button::Middle => "middle",
                    Button::Unknown(_) => "other",
                };
                let e = Event::new(kind, self.clock.stamp_at(at))
                    .with("button", button)?
                    .with("x", self.pointer.0)?
                    .with("y", self.pointer.1)?;
                out.push(Output::Event(e));
            }
            EventType::Wheel { delta_x, delta_y } => {
                self.flush_held(out);
                self.flush_move(out);
                let e = Event::new(Kind::MouseWheel, self.clock.stamp_at(at))
                    .with("dx", delta_x)?
                    .with("dy", delta_y)?;
                out.push(Output::Event(e));
            }
        }
        Ok(())
    }
}

/// Keys withheld in a row, written as one `excluded` gap with their count.
#[derive(Debug)]
struct Run {
    since: Stamp,
    last: Stamp,
    count: i64,
}

/// The input source's side of exclusions: each raw key's verdict (by its
/// stamp, which every event made from it carries, held-back modifiers
/// included) and the run of keys withheld.
struct Keys {
    verdicts: std::collections::VecDeque<(i64, Verdict)>,
    run: Option<Run>,
}

/// Verdicts kept for events the translator holds back (modifiers).
const VERDICTS_KEPT: usize = 256;
/// A run of withheld keys is written once no key was withheld for this long.
const RUN_IDLE: Duration = Duration::from_secs(1);

impl Keys {
    fn new() -> Keys {
        Keys {
            verdicts: std::collections::VecDeque::new(),
            run: None,
        }
    }

    fn note(&mut self, mono_ns: i64, verdict: Verdict) {
        if self.verdicts.len() >= VERDICTS_KEPT {
            self.verdicts.pop_front();
        }
        self.verdicts.push_back((mono_ns, verdict));
    }

    fn verdict(&self, mono_ns: i64) -> Verdict {
        self.verdicts
            .iter()
            .rev()
            .find(|(m, _)| *m == mono_ns)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| Verdict::Withhold("no verdict for this key".into()))
    }

    fn withhold(&mut self, at: Stamp) {
        match &mut self.run {
            Some(r) => {
                r.last = at;
                r.count += 1;
            }
            None => {
                self.run = Some(Run {
                    since: at,
                    last: at,
                    count: 1,
                })
            }
        }
    }

    /// Writes the run of withheld keys as a gap, now, or once it is idle.
    fn flush(&mut self, ctl: &super::Control, clock: &SessionClock, only_if_idle: bool) {
        let idle = self
            .run
            .as_ref()
            .is_some_and(|r| clock.stamp().mono_ns - r.last.mono_ns >= RUN_IDLE.as_nanos() as i64);
        if only_if_idle && !idle {
            return;
        }
        if let Some(r) = self.run.take() {
            let gap = Event::new(Kind::CaptureGap, r.since)
                .with("reason", "excluded")
                .and_then(|e| e.with("duration_ns", (r.last.mono_ns - r.since.mono_ns).max(0)))
                .and_then(|e| e.with("count", r.count));
            match gap {
                Ok(g) => ctl.deliver_gap(g),
                Err(e) => tracing::error!("gap for {} withheld keys not written: {e}", r.count),
            }
        }
    }
}

/// Hands translated events over; keys only with a verdict to record them.
fn deliver(ctl: &super::Control, clock: &SessionClock, out: &mut Vec<Output>, keys: &mut Keys) {
    for o in out.drain(..) {
        match o {
            Output::Event(e) if matches!(e.kind, Kind::KeyDown | Kind::KeyUp) => {
                let at = Stamp {
                    wall_ns: e.wall_ns,
                    mono_ns: e.mono_ns,
                };
                match keys.verdict(e.mono_ns) {
                    Verdict::Record => match ctl.offer(e) {
                        Err(super::NotRecorded::Excluded) => keys.withhold(at),
                        _ => keys.flush(ctl, clock, false),
                    },
                    // A pause is its own gap: keys in it are not counted twice.
                    Verdict::Withhold(_) if ctl.is_paused() => {}
                    Verdict::Withhold(why) => {
                        tracing::debug!(%why, "key withheld");
                        keys.withhold(at);
                    }
                }
            }
            Output::Event(e) => ctl.deliver(e),
            Output::TogglePause(at) => ctl.toggle_pause(at, "hotkey"),
        }
    }
}

/// Starts the keyboard and mouse source. Raw events are translated right
/// in rdev's callback, on its own thread: handing each one to another
/// thread would cost a wake-up per mouse move, several times what the
/// translation costs. A key event first waits there for the focus
/// source's verdict (typically well under a millisecond; rdev's events
/// queue in the X connection meanwhile, and order is kept). A small timer
/// thread writes out held-back mouse moves when the pointer comes to rest,
/// and runs of withheld keys once they end. Returns once the listener is
/// known to be running or to have failed.
pub fn spawn(
    ctl: std::sync::Arc<super::Control>,
    clock: SessionClock,
    mouse_rate_hz: u32,
) -> super::SourceState {
    use std::sync::{Arc, Mutex};

    let translator = Arc::new(Mutex::new((
        Translator::new(clock, mouse_rate_hz),
        Vec::<Output>::new(),
        Keys::new(),
    )));
    let (err_tx, err_rx) = crossbeam_channel::bounded::<String>(1);
    let in_callback = translator.clone();
    let ctl_cb = ctl.clone();
    let mut matcher = KeyMatcher::new(ctl.key_judge());
    let listener = std::thread::Builder::new()
        .name("candor-rdev".into())
        .spawn(move || {
            // rdev::listen blocks for the life of the process and cannot be
            // stopped; after a stop its callback returns at once.
            let result = rdev::listen(move |ev| {
                if ctl_cb.stopping() {
                    return;
                }
                let at = Instant::now();
                let verdict = match ev.event_type {
                    EventType::KeyPress(k) => Some(matcher.judge(k, true, at)),
                    EventType::KeyRelease(k) => Some(matcher.judge(k, false, at)),
                    _ => None,
                };
                let mut guard = in_callback.lock().unwrap_or_else(|p| p.into_inner());
                let (tr, out, keys) = &mut *guard;
                if let Some(v) = verdict {
                    keys.note(clock.stamp_at(at).mono_ns, v);
                }
                if let Err(e) = tr.translate(&ev, at, out) {
                    tracing::error!("input event not translated: {e}");
                }
                deliver(&ctl_cb, &clock, out, keys);
            });
            let why = match result {
                Ok(()) => "the X input listener stopped".to_owned(),
                Err(rdev::ListenError::MissingDisplayError)
                | Err(rdev::ListenError::KeyboardError) => {
                    "cannot open the X display (is DISPLAY set and an X server running?)".to_owned()
                }
                Err(rdev::ListenError::XRecordExtensionError) => {
                    "the X server has no RECORD extension, which input capture needs".to_owned()
                }
                Err(e) => format!("the X input listener failed: {e:?}"),
            };
            let _ = err_tx.send(why);
        });
    if let Err(e) = listener {
        return super::SourceState::Unavailable(format!("cannot start the input thread: {e}"));
    }
    // rdev fails at once when X is missing; a listener still up after this
    // long is running.
    if let Ok(why) = err_rx.recv_timeout(Duration::from_millis(300)) {
        return super::SourceState::Unavailable(why);
    }
    let ctl_for_join = ctl.clone();
    let worker = std::thread::Builder::new()
        .name("candor-input".into())
        .spawn(move || {
            // Only a pointer that came to rest needs this: while it moves, the
            // callback writes moves itself. So it wakes often only while a move
            // is held back, and a tenth of a second late is soon enough.
            let every = translator
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .0
                .tick_every()
                .max(Duration::from_millis(100));
            let mut wait = every;
            while !ctl.stopping() {
                if let Ok(why) = err_rx.recv_timeout(wait) {
                    ctl.set_state("input", super::SourceState::Unavailable(why));
                    break;
                }
                let mut guard = translator.lock().unwrap_or_else(|p| p.into_inner());
                let (tr, out, keys) = &mut *guard;
                tr.tick(Instant::now(), out);
                wait = if tr.has_pending_move() || keys.run.is_some() {
                    every
                } else {
                    every * 4
                };
                deliver(&ctl, &clock, out, keys);
                keys.flush(&ctl, &clock, true);
            }
            // Withheld keys are on record before the daemon closes the store.
            let mut guard = translator.lock().unwrap_or_else(|p| p.into_inner());
            guard.2.flush(&ctl, &clock, false);
        });
    match worker {
        Ok(w) => {
            ctl_for_join.adopt(w);
            super::SourceState::Running
        }
        Err(e) => super::SourceState::Unavailable(format!("cannot start the input thread: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Value;
    use std::time::SystemTime;

    fn raw(t: EventType, name: Option<&str>) -> rdev::Event {
        rdev::Event {
            time: SystemTime::now(),
            name: name.map(str::to_owned),
            event_type: t,
        }
    }

    struct Rig {
        tr: Translator,
        t0: Instant,
        ms: u64,
        out: Vec<Output>,
    }

    impl Rig {
        fn new() -> Rig {
            Rig {
                tr: Translator::new(SessionClock::start(), 30),
                t0: Instant::now(),
                ms: 0,
                out: Vec::new(),
            }
        }
        fn feed(&mut self, t: EventType, name: Option<&str>, after_ms: u64) {
            self.ms += after_ms;
            let at = self.t0 + Duration::from_millis(self.ms);
            self.tr.translate(&raw(t, name), at, &mut self.out).unwrap();
        }
        fn tap(&mut self, k: Key, name: Option<&str>) {
            self.feed(EventType::KeyPress(k), name, 50);
            self.feed(EventType::KeyRelease(k), None, 50);
        }
        fn texts(&self) -> Vec<String> {
            self.out
                .iter()
                .filter_map(|o| match o {
                    Output::Event(e) if e.kind == Kind::KeyDown => match e.get("text") {
                        Some(Value::Str(s)) => Some(s.to_string()),
                        _ => e.get("key").map(|k| format!("<{k:?}>")),
                    },
                    Output::TogglePause(_) => Some("<PAUSE>".into()),
                    _ => None,
                })
                .collect()
        }
    }

    #[test]
    fn ctrl_c_is_a_chord_and_shift_gives_the_typed_character() {
        let mut r = Rig::new();
        r.feed(EventType::KeyPress(Key::ControlLeft), None, 10);
        r.tap(Key::KeyC, Some("c"));
        r.feed(EventType::KeyRelease(Key::ControlLeft), None, 10);
        r.feed(EventType::KeyPress(Key::ShiftLeft), None, 10);
        r.tap(Key::KeyH, Some("H"));
        r.feed(EventType::KeyRelease(Key::ShiftLeft), None, 10);
        let texts = r.texts();
        assert_eq!(
            texts,
            vec![
                "<Str(\"ControlLeft\")>",
                "ctrl+c",
                "<Str(\"ShiftLeft\")>",
                "H"
            ]
        );
        let mods: Vec<i64> = r
            .out
            .iter()
            .filter_map(|o| match o {
                Output::Event(e) if e.kind == Kind::KeyDown => match e.get("mods") {
                    Some(Value::Int(m)) => Some(*m),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        assert_eq!(mods, vec![CTRL, CTRL, SHIFT, SHIFT]);
    }

    #[test]
    fn the_pause_hotkey_toggles_and_leaves_no_trace() {
        let mut r = Rig::new();
        r.tap(Key::KeyA, Some("a"));
        for k in [Key::ControlLeft, Key::Alt, Key::ShiftLeft] {
            r.feed(EventType::KeyPress(k), None, 5);
        }
        r.tap(Key::KeyP, Some("P"));
        for k in [Key::ShiftLeft, Key::Alt, Key::ControlLeft] {
            r.feed(EventType::KeyRelease(k), None, 5);
        }
        r.tap(Key::KeyB, Some("b"));
        // As xdotool does it: the modifiers go up before the key.
        for k in [Key::ControlLeft, Key::Alt, Key::ShiftLeft] {
            r.feed(EventType::KeyPress(k), None, 5);
        }
        r.feed(EventType::KeyPress(Key::KeyP), Some("P"), 5);
        for k in [Key::ShiftLeft, Key::Alt, Key::ControlLeft] {
            r.feed(EventType::KeyRelease(k), None, 5);
        }
        r.feed(EventType::KeyRelease(Key::KeyP), None, 5);
        r.tap(Key::KeyC, Some("c"));
        assert_eq!(r.texts(), vec!["a", "<PAUSE>", "b", "<PAUSE>", "c"]);
        let events = r
            .out
            .iter()
            .filter(|o| matches!(o, Output::Event(_)))
            .count();
        assert_eq!(events, 6, "only a, b and c, down and up: {:?}", r.out);
    }

    #[test]
    fn modifiers_tapped_alone_are_kept_in_order() {
        let mut r = Rig::new();
        r.feed(EventType::KeyPress(Key::ShiftLeft), None, 5);
        r.feed(EventType::KeyRelease(Key::ShiftLeft), None, 5);
        r.tap(Key::KeyA, Some("a"));
        let kinds: Vec<(Kind, i64)> = r
            .out
            .iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some((e.kind, e.mono_ns)),
                _ => None,
            })
            .collect();
        assert_eq!(kinds.len(), 4);
        assert!(
            kinds.windows(2).all(|w| w[0].1 <= w[1].1),
            "out of order: {kinds:?}"
        );
    }

    #[test]
    fn moves_are_thinned_and_the_last_position_precedes_a_click() {
        let mut r = Rig::new();
        // 1,000 moves/s for 300 ms.
        for i in 0..300 {
            r.feed(
                EventType::MouseMove {
                    x: f64::from(i),
                    y: 5.0,
                },
                None,
                1,
            );
        }
        let moves = r.out.len();
        assert!((9..=11).contains(&moves), "{moves} moves kept at 30 Hz");
        r.feed(EventType::ButtonPress(Button::Left), None, 1);
        let n = r.out.len();
        let Output::Event(last_move) = &r.out[n - 2] else {
            panic!()
        };
        let Output::Event(click) = &r.out[n - 1] else {
            panic!()
        };
        assert_eq!(last_move.get("x"), Some(&Value::Int(299)));
        assert_eq!(click.get("x"), Some(&Value::Int(299)));
        assert_eq!(click.get("button"), Some(&Value::from("left")));
    }

    #[test]
    fn wheel_and_timestamps_are_monotonic() {
        let mut r = Rig::new();
        r.feed(
            EventType::Wheel {
                delta_x: 0,
                delta_y: -1,
            },
            None,
            3,
        );
        let Output::Event(w) = &r.out[0] else {
            panic!()
        };
        assert_eq!(w.get("dy"), Some(&Value::Int(-1)));
        assert!(w.mono_ns >= 3_000_000);
    }
}
