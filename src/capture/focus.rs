//! The keyboard focus, from X11, and the exclusion of excluded applications'
//! keys judged at each key's own place in the X server's event order.
//!
//! Why not a poll, nor `_NET_ACTIVE_WINDOW` alone: a poll judges a key by
//! the focus at hand-over, so the first keys typed right after a focus
//! change reach the store; and `_NET_ACTIVE_WINDOW` is whatever the window
//! manager last wrote, stale once it has died.
//!
//! How: one X connection receives, in the server's own order, XInput2 raw
//! key events (one per key press and release, whoever has focus) and every
//! event that can move the focus (FocusIn/Out on the root and each
//! top-level window, pointer crossings, windows appearing and going, the
//! root's `_NET_ACTIVE_WINDOW` and `_NET_SUPPORTING_WM_CHECK`). Between two
//! such changes the focus is constant: a *segment*. After each change the
//! tracker asks the server (GetInputFocus, QueryPointer, the root's
//! properties); the reply lands at a known place in the event stream (X
//! event sequence numbers), so it names the focus of the segment it lands
//! in, provided no change came while it was asked. A key is judged by the
//! segment it fell in; a key whose segment ended before it could be
//! resolved is withheld. Withheld means: never stored, counted in a gap.
//!
//! What counts as excluded (fail closed): an excluded application's window;
//! a focused window whose class cannot be read; the window manager's
//! `_NET_ACTIVE_WINDOW` disagreeing with the real input focus; a window
//! manager that has vanished (its `_NET_SUPPORTING_WM_CHECK` window gone);
//! focus None; a keyboard grab whose window cannot be seen; and any focus
//! not yet resolved. Keys that go to the bare root window (PointerRoot with
//! the pointer over no window) reach no application and are kept.
//!
//! rdev reports the same keys on its own connection; [`KeyMatcher`] pairs
//! each of rdev's key events with the tracker's raw event by order, checked
//! by key code and direction, and withholds everything while the two
//! streams are out of step.

use std::collections::{HashMap, HashSet, VecDeque};
use std::os::fd::AsFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xinput::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ChangeWindowAttributesAux, ConnectionExt, EventMask, NotifyDetail, NotifyMode,
    Window,
};
use x11rb::protocol::Event as XEvent;
use x11rb::rust_connection::RustConnection;

use super::{Control, SourceState};
use crate::event::{Event, SessionClock};
use crate::registry::Kind;

/// Longest wait for an X event before checking for a stop; X events
/// themselves wake the thread at once.
const WAIT: Duration = Duration::from_millis(100);
/// How long a key waits for the tracker's verdict before it is withheld.
const SETTLE: Duration = Duration::from_millis(500);
/// A pause in typing this long lets the two key streams be paired again.
const QUIET: Duration = Duration::from_millis(300);
/// Raw key events kept for pairing.
const KEEP: usize = 4096;
/// A focus that is withheld for another reason than an excluded app (focus
/// unknown, the window manager disagreeing for a moment) is shown in status
/// and hides the mouse only once it lasts this long: window managers
/// disagree for a millisecond at every focus change. Keys do not wait for
/// this; each is judged on its own.
const FLAG_AFTER: Duration = Duration::from_millis(250);
const EXCLUDED_APP: &str = "an excluded application has focus";

/// Application classes excluded by default: password managers, keyring and
/// PIN prompts. Matched without case against the class and the instance.
pub const DEFAULT_EXCLUDED: &[&str] = &[
    "keepassxc",
    "keepass2",
    "keepass",
    "1password",
    "bitwarden",
    "enpass",
    "lastpass",
    "dashlane",
    "keeper",
    "proton pass",
    "pinentry",
    "pinentry-gtk-2",
    "pinentry-gnome3",
    "pinentry-qt",
    "gcr-prompter",
    "gnome-keyring-prompt",
    "seahorse",
    "kwalletd5",
    "kwalletd6",
    "kwalletmanager5",
    "ksshaskpass",
    "ssh-askpass",
    "polkit-gnome-authentication-agent-1",
];

/// What has focus.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Focus {
    /// `WM_CLASS` class; `None` when no application has focus.
    pub class: Option<String>,
    pub instance: Option<String>,
    pub title: Option<String>,
}

/// Whether `focus` belongs to an excluded application.
pub fn is_excluded(focus: &Focus, excluded: &[String]) -> bool {
    [&focus.class, &focus.instance]
        .into_iter()
        .flatten()
        .any(|name| {
            let name = name.to_lowercase();
            excluded.iter().any(|e| {
                let e = e.to_lowercase();
                name == e || (e == "pinentry" && name.starts_with("pinentry"))
            })
        })
}

/// What may be done with one key event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Record,
    /// Never stored; the reason is logged and the key counted in a gap.
    Withhold(String),
}

impl Verdict {
    pub fn records(&self) -> bool {
        *self == Verdict::Record
    }
}

/// One raw key event as the tracker saw it.
#[derive(Debug)]
struct Raw {
    code: u32,
    press: bool,
    seen: Instant,
    verdict: Option<Verdict>,
}

#[derive(Debug, Default)]
struct Judged {
    /// Why no tracker runs, or `None` while one does.
    down: Option<String>,
    /// Index of `raws[0]`.
    base: u64,
    raws: VecDeque<Raw>,
    /// The focus's verdict as of the latest resolved segment.
    current: Option<Verdict>,
}

/// The tracker's verdicts on raw key events, shared with the input source.
#[derive(Debug)]
pub struct KeyJudge {
    inner: Mutex<Judged>,
    changed: Condvar,
}

impl Default for KeyJudge {
    fn default() -> Self {
        KeyJudge {
            inner: Mutex::new(Judged {
                down: Some("the focus source has not started".into()),
                ..Judged::default()
            }),
            changed: Condvar::new(),
        }
    }
}

impl KeyJudge {
    fn lock(&self) -> MutexGuard<'_, Judged> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_down(&self, why: Option<String>) {
        let mut j = self.lock();
        j.down = why;
        if j.down.is_some() {
            j.current = None;
        }
        self.changed.notify_all();
    }

    /// Records a raw key event; returns its index.
    fn push(&self, code: u32, press: bool, verdict: Option<Verdict>) -> u64 {
        tracing::trace!(code, press, "raw key");
        let mut j = self.lock();
        while j.raws.len() >= KEEP {
            j.raws.pop_front();
            j.base += 1;
        }
        j.raws.push_back(Raw {
            code,
            press,
            seen: Instant::now(),
            verdict,
        });
        self.changed.notify_all();
        j.base + j.raws.len() as u64 - 1
    }

    fn decide(&self, indices: &[u64], verdict: &Verdict) {
        let mut j = self.lock();
        for &i in indices {
            if let Some(r) = i
                .checked_sub(j.base)
                .and_then(|o| j.raws.get_mut(o as usize))
            {
                r.verdict = Some(verdict.clone());
            }
        }
        self.changed.notify_all();
    }

    fn set_current(&self, v: Option<Verdict>) {
        self.lock().current = v;
    }
}

/// Pairs rdev's key events with the tracker's raw events; lives with the
/// input source.
pub struct KeyMatcher {
    judge: Arc<KeyJudge>,
    /// Index of the raw event the next key should be; `None` while out of
    /// step.
    next: Option<u64>,
    last_key: Option<Instant>,
    /// Verdicts of keys held down, for autorepeat (no raw event of its own).
    down: HashMap<rdev::Key, Verdict>,
    /// Whether the user was told that no tracker runs.
    warned: bool,
}

impl KeyMatcher {
    pub fn new(judge: Arc<KeyJudge>) -> KeyMatcher {
        KeyMatcher {
            judge,
            next: None,
            last_key: None,
            down: HashMap::new(),
            warned: false,
        }
    }

    /// The verdict on one key event rdev reported at `at`. Blocks until the
    /// tracker has judged it, or [`SETTLE`] has passed.
    pub fn judge(&mut self, key: rdev::Key, press: bool, at: Instant) -> Verdict {
        let quiet = self
            .last_key
            .is_none_or(|t| at.saturating_duration_since(t) >= QUIET);
        self.last_key = Some(at);
        let verdict = self.judge_inner(key, press, at, quiet);
        tracing::trace!(
            waited_us = at.elapsed().as_micros() as u64,
            ?verdict,
            "key judged"
        );
        if press {
            self.down.insert(key, verdict.clone());
        } else {
            self.down.remove(&key);
        }
        verdict
    }

    fn judge_inner(&mut self, key: rdev::Key, press: bool, at: Instant, quiet: bool) -> Verdict {
        let code = keycode(key);
        tracing::trace!(?key, ?code, press, "rdev key");
        let deadline = at + SETTLE;
        let mut j = self.judge.lock();
        if let Some(why) = &j.down {
            if !self.warned {
                tracing::warn!("keys are withheld: the focus is unknown ({why})");
                self.warned = true;
            }
            self.next = None;
            return Verdict::Withhold(format!("focus unknown: {why}"));
        }
        self.warned = false;
        if press == self.down.contains_key(&key) {
            // A press of a key already down (X's autorepeat) or a release
            // of a key never seen down (pressed before the start) has no
            // raw event to pair with: it is judged by the key's press, if
            // seen, and by the focus now.
            let first = self.down.get(&key).cloned().unwrap_or(Verdict::Record);
            return match (first, j.current.clone()) {
                (Verdict::Record, Some(Verdict::Record)) => Verdict::Record,
                (Verdict::Withhold(why), _) | (_, Some(Verdict::Withhold(why))) => {
                    Verdict::Withhold(why)
                }
                (_, None) => Verdict::Withhold("focus unknown".into()),
            };
        }
        let idx = match self.next {
            Some(i) => i,
            None if quiet => {
                // Pair again: after a pause, the first raw event seen near
                // this key's time is this key.
                let since = at.checked_sub(QUIET / 2).unwrap_or(at);
                loop {
                    let found = j
                        .raws
                        .iter()
                        .enumerate()
                        .rev()
                        .take_while(|(_, r)| r.seen >= since)
                        .last()
                        .map(|(o, _)| j.base + o as u64);
                    if let Some(i) = found {
                        break i;
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return Verdict::Withhold("focus unknown: no raw key event seen".into());
                    }
                    j = self
                        .judge
                        .changed
                        .wait_timeout(j, deadline - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
            None => {
                return Verdict::Withhold(
                    "key streams out of step; pairing again after a pause".into(),
                )
            }
        };
        loop {
            if let Some(why) = &j.down {
                self.next = None;
                return Verdict::Withhold(format!("focus unknown: {why}"));
            }
            let raw = idx.checked_sub(j.base).and_then(|o| j.raws.get(o as usize));
            match raw {
                Some(r) if r.press != press || code.is_some_and(|c| c != r.code) => {
                    tracing::warn!(
                        ?key,
                        press,
                        raw_code = r.code,
                        raw_press = r.press,
                        "rdev's key event and X's raw key event disagree; keys are withheld until typing pauses"
                    );
                    self.next = None;
                    return Verdict::Withhold("key streams out of step".into());
                }
                Some(Raw {
                    verdict: Some(v), ..
                }) => {
                    self.next = Some(idx + 1);
                    return v.clone();
                }
                None if idx < j.base => {
                    self.next = None;
                    return Verdict::Withhold("key streams out of step".into());
                }
                _ => {}
            }
            let now = Instant::now();
            if now >= deadline {
                // Seen but unjudged: still in step. Never seen: not.
                self.next = raw.map(|_| idx + 1);
                return Verdict::Withhold("focus not resolved in time".into());
            }
            j = self
                .judge
                .changed
                .wait_timeout(j, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// The X key code of an rdev key: rdev's own table (rdev 0.5.3,
/// src/linux/keycodes.rs), which it does not export.
fn keycode(key: rdev::Key) -> Option<u32> {
    use rdev::Key::*;
    Some(match key {
        Alt => 64,
        AltGr => 108,
        Backspace => 22,
        CapsLock => 66,
        ControlLeft => 37,
        ControlRight => 105,
        Delete => 119,
        DownArrow => 116,
        End => 115,
        Escape => 9,
        F1 => 67,
        F10 => 76,
        F11 => 95,
        F12 => 96,
        F2 => 68,
        F3 => 69,
        F4 => 70,
        F5 => 71,
        F6 => 72,
        F7 => 73,
        F8 => 74,
        F9 => 75,
        Home => 110,
        LeftArrow => 113,
        MetaLeft => 133,
        PageDown => 117,
        PageUp => 112,
        Return => 36,
        RightArrow => 114,
        ShiftLeft => 50,
        ShiftRight => 62,
        Space => 65,
        Tab => 23,
        UpArrow => 111,
        PrintScreen => 107,
        ScrollLock => 78,
        Pause => 127,
        NumLock => 77,
        BackQuote => 49,
        Num1 => 10,
        Num2 => 11,
        Num3 => 12,
        Num4 => 13,
        Num5 => 14,
        Num6 => 15,
        Num7 => 16,
        Num8 => 17,
        Num9 => 18,
        Num0 => 19,
        Minus => 20,
        Equal => 21,
        KeyQ => 24,
        KeyW => 25,
        KeyE => 26,
        KeyR => 27,
        KeyT => 28,
        KeyY => 29,
        KeyU => 30,
        KeyI => 31,
        KeyO => 32,
        KeyP => 33,
        LeftBracket => 34,
        RightBracket => 35,
        KeyA => 38,
        KeyS => 39,
        KeyD => 40,
        KeyF => 41,
        KeyG => 42,
        KeyH => 43,
        KeyJ => 44,
        KeyK => 45,
        KeyL => 46,
        SemiColon => 47,
        Quote => 48,
        BackSlash => 51,
        IntlBackslash => 94,
        KeyZ => 52,
        KeyX => 53,
        KeyC => 54,
        KeyV => 55,
        KeyB => 56,
        KeyN => 57,
        KeyM => 58,
        Comma => 59,
        Dot => 60,
        Slash => 61,
        Insert => 118,
        KpReturn => 104,
        KpMinus => 82,
        KpPlus => 86,
        KpMultiply => 63,
        KpDivide => 106,
        Kp0 => 90,
        Kp1 => 87,
        Kp2 => 88,
        Kp3 => 89,
        Kp4 => 83,
        Kp5 => 84,
        Kp6 => 85,
        Kp7 => 79,
        Kp8 => 80,
        Kp9 => 81,
        KpDelete => 91,
        Unknown(code) => code,
        _ => return None,
    })
}

/// The focus of one segment, once resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Resolved {
    /// Keys go to this application (or to no application: the bare root).
    App(Focus),
    /// Keys are withheld: the label names the app or the state, for status.
    Withheld { label: String, why: String },
}

#[derive(Debug)]
struct Segment {
    state: Option<Resolved>,
    /// Whether pointer crossings move the keyboard focus (PointerRoot), so
    /// they are changes too. True until known otherwise.
    follows_pointer: bool,
    /// Raw key events in this segment awaiting its resolution.
    pending: Vec<u64>,
}

impl Segment {
    fn unknown() -> Segment {
        Segment {
            state: None,
            follows_pointer: true,
            pending: Vec::new(),
        }
    }
}

/// Whether a keyboard grab is active, and on which top-level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grab {
    None,
    /// Grabbed, by a window not (yet) seen.
    Unseen,
    To(Window),
}

struct Atoms {
    active: Atom,
    check: Atom,
    net_wm_name: Atom,
    utf8: Atom,
}

struct Tracker {
    conn: RustConnection,
    root: Window,
    atoms: Atoms,
    excluded: Vec<String>,
    judge: Arc<KeyJudge>,
    /// Windows whose focus, crossing and property events are selected.
    watched: HashSet<Window>,
    seg: Segment,
    grab: Grab,
    /// Key codes down, by the raw events: X sends raw events for releases
    /// of keys that are not down (xdotool releases every modifier), which
    /// the core events rdev sees leave out; presses of a key already down
    /// are repeats. Neither gets a place in the pairing, on either side.
    down: HashSet<u32>,
}

/// Why the tracker cannot go on (the X connection is gone).
struct Lost(String);

fn lost(e: impl std::fmt::Display) -> Lost {
    Lost(format!("the X server went away: {e}"))
}

/// What is selected on each top-level window and focused client.
fn top_mask() -> EventMask {
    EventMask::FOCUS_CHANGE
        | EventMask::ENTER_WINDOW
        | EventMask::LEAVE_WINDOW
        | EventMask::PROPERTY_CHANGE
}

impl Tracker {
    fn connect(excluded: Vec<String>, judge: Arc<KeyJudge>) -> Result<Tracker, String> {
        let (conn, screen) =
            x11rb::connect(None).map_err(|e| format!("cannot open the X display: {e}"))?;
        let root = conn.setup().roots[screen].root;
        let atom = |name: &[u8]| -> Result<Atom, String> {
            conn.intern_atom(false, name)
                .map_err(|e| e.to_string())?
                .reply()
                .map(|r| r.atom)
                .map_err(|e| e.to_string())
        };
        let atoms = Atoms {
            active: atom(b"_NET_ACTIVE_WINDOW")?,
            check: atom(b"_NET_SUPPORTING_WM_CHECK")?,
            net_wm_name: atom(b"_NET_WM_NAME")?,
            utf8: atom(b"UTF8_STRING")?,
        };
        // XInput 2.2: raw key events reach the root whoever has focus, and
        // in the same stream as the focus events.
        let xi = conn
            .extension_information(xinput::X11_EXTENSION_NAME)
            .map_err(|e| e.to_string())?;
        if xi.is_none() {
            return Err("the X server has no XInput extension, which exclusions need".into());
        }
        let version = conn
            .xinput_xi_query_version(2, 2)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| format!("XInput 2 is not available: {e}"))?;
        if (version.major_version, version.minor_version) < (2, 2) {
            return Err(format!(
                "XInput {}.{} is too old; exclusions need 2.2",
                version.major_version, version.minor_version
            ));
        }
        let mut t = Tracker {
            conn,
            root,
            atoms,
            excluded,
            judge,
            watched: HashSet::new(),
            seg: Segment::unknown(),
            grab: Grab::None,
            down: HashSet::new(),
        };
        // The root: windows appearing and going, the window manager's
        // properties, focus to and from PointerRoot and None.
        let aux = ChangeWindowAttributesAux::new().event_mask(
            EventMask::SUBSTRUCTURE_NOTIFY
                | EventMask::FOCUS_CHANGE
                | EventMask::PROPERTY_CHANGE
                | EventMask::ENTER_WINDOW
                | EventMask::LEAVE_WINDOW,
        );
        t.conn
            .change_window_attributes(root, &aux)
            .map_err(|e| e.to_string())?
            .check()
            .map_err(|e| format!("cannot watch the root window: {e}"))?;
        t.conn
            .xinput_xi_select_events(
                root,
                &[xinput::EventMask {
                    deviceid: u16::from(bool::from(xinput::Device::ALL_MASTER)),
                    mask: vec![
                        xinput::XIEventMask::RAW_KEY_PRESS | xinput::XIEventMask::RAW_KEY_RELEASE,
                    ],
                }],
            )
            .map_err(|e| e.to_string())?
            .check()
            .map_err(|e| format!("cannot select raw key events: {e}"))?;
        let children = t
            .conn
            .query_tree(root)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| e.to_string())?
            .children;
        for w in children {
            t.watch(w).map_err(|Lost(why)| why)?;
        }
        Ok(t)
    }

    /// Selects focus, crossing and property events on `win`. A window that
    /// has gone is ignored.
    fn watch(&mut self, win: Window) -> Result<(), Lost> {
        if win == self.root || !self.watched.insert(win) {
            return Ok(());
        }
        let aux = ChangeWindowAttributesAux::new().event_mask(top_mask());
        self.conn
            .change_window_attributes(win, &aux)
            .map_err(lost)?
            .ignore_error();
        Ok(())
    }

    /// Keeps the watch list and the grab state up to date with `ev`.
    fn follow(&mut self, ev: &XEvent) -> Result<(), Lost> {
        match ev {
            XEvent::FocusIn(f) | XEvent::FocusOut(f) => match f.mode {
                NotifyMode::GRAB => {
                    self.grab = if matches!(ev, XEvent::FocusIn(_)) {
                        Grab::To(f.event)
                    } else {
                        Grab::Unseen
                    };
                }
                NotifyMode::UNGRAB => self.grab = Grab::None,
                _ => {}
            },
            XEvent::CreateNotify(c) if c.parent == self.root => self.watch(c.window)?,
            XEvent::ReparentNotify(r) if r.parent == self.root => self.watch(r.window)?,
            XEvent::DestroyNotify(d) => {
                self.watched.remove(&d.window);
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether `ev` may mean that keys now go elsewhere. Pointer crossings
    /// count when `crossings` (the focus follows the pointer, or may).
    fn classify(&self, ev: &XEvent, crossings: bool) -> bool {
        match ev {
            // Within one top-level the application does not change.
            XEvent::FocusIn(f) | XEvent::FocusOut(f) => {
                f.event == self.root
                    || f.detail != NotifyDetail::INFERIOR
                    || f.mode != NotifyMode::NORMAL
            }
            XEvent::EnterNotify(c) | XEvent::LeaveNotify(c) => {
                crossings && (c.event == self.root || c.detail != NotifyDetail::INFERIOR)
            }
            XEvent::ReparentNotify(_)
            | XEvent::DestroyNotify(_)
            | XEvent::MapNotify(_)
            | XEvent::UnmapNotify(_) => true,
            XEvent::PropertyNotify(p) => {
                if p.window == self.root {
                    p.atom == self.atoms.active || p.atom == self.atoms.check
                } else {
                    p.atom == u32::from(AtomEnum::WM_CLASS)
                        || p.atom == u32::from(AtomEnum::WM_NAME)
                        || p.atom == self.atoms.net_wm_name
                }
            }
            _ => false,
        }
    }

    /// Takes one event, in stream order.
    fn take(&mut self, ev: XEvent) -> Result<(), Lost> {
        let raw = match &ev {
            XEvent::XinputRawKeyPress(k) => Some((k.detail, true)),
            XEvent::XinputRawKeyRelease(k) => Some((k.detail, false)),
            _ => None,
        };
        if let Some((code, press)) = raw {
            let paired = if press {
                self.down.insert(code)
            } else {
                self.down.remove(&code)
            };
            if !paired {
                return Ok(());
            }
            let verdict = self.seg.state.as_ref().map(|s| match s {
                Resolved::App(_) => Verdict::Record,
                Resolved::Withheld { why, .. } => Verdict::Withhold(why.clone()),
            });
            let unresolved = verdict.is_none();
            let idx = self.judge.push(code, press, verdict);
            if unresolved {
                self.seg.pending.push(idx);
            }
            return Ok(());
        }
        self.follow(&ev)?;
        if !self.classify(&ev, self.seg.follows_pointer) {
            return Ok(());
        }
        // The segment ends here. Keys in it that were never resolved are
        // withheld: what they went to cannot be known any more.
        if !self.seg.pending.is_empty() {
            self.judge.decide(
                &self.seg.pending,
                &Verdict::Withhold("focus changed before it could be resolved".into()),
            );
            tracing::info!(
                keys = self.seg.pending.len(),
                "keys withheld: focus changed before it could be resolved"
            );
        }
        let follows_pointer = self.seg.follows_pointer;
        self.seg = Segment::unknown();
        self.judge.set_current(None);
        // A crossing matters only under PointerRoot; keep that knowledge
        // across changes that are not focus changes.
        if !matches!(ev, XEvent::FocusIn(_) | XEvent::FocusOut(_)) {
            self.seg.follows_pointer = follows_pointer;
        }
        Ok(())
    }

    fn property(&self, win: Window, prop: Atom, ty: Atom) -> Result<Option<Vec<u8>>, Lost> {
        let cookie = self
            .conn
            .get_property(false, win, prop, ty, 0, 1024)
            .map_err(lost)?;
        Ok(match cookie.reply() {
            Ok(r) if r.value_len > 0 => Some(r.value),
            Ok(_) => None,
            Err(x11rb::errors::ReplyError::ConnectionError(e)) => return Err(lost(e)),
            // The window has gone.
            Err(_) => None,
        })
    }

    fn window_property(&self, win: Window, prop: Atom) -> Result<Option<Window>, Lost> {
        Ok(self
            .property(win, prop, AtomEnum::WINDOW.into())?
            .and_then(|v| {
                v.get(..4)
                    .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            }))
    }

    fn class_of(&self, win: Window) -> Result<Option<(String, String)>, Lost> {
        Ok(self
            .property(win, AtomEnum::WM_CLASS.into(), AtomEnum::STRING.into())?
            .map(|raw| {
                let mut parts = raw
                    .split(|b| *b == 0)
                    .map(|p| String::from_utf8_lossy(p).into_owned());
                let instance = parts.next().unwrap_or_default();
                let class = parts.next().unwrap_or_default();
                (instance, class)
            }))
    }

    fn title_of(&self, win: Window) -> Result<Option<String>, Lost> {
        let title = match self.property(win, self.atoms.net_wm_name, self.atoms.utf8)? {
            Some(t) => Some(t),
            None => self.property(win, AtomEnum::WM_NAME.into(), AtomEnum::STRING.into())?,
        };
        Ok(title.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// The client window (the one with `WM_CLASS`) that `win` belongs to:
    /// up through its ancestors, else down inside its top-level (a window
    /// manager's frame). `Ok(None)`: no client at all.
    fn client_of(&self, win: Window) -> Result<Option<Window>, Lost> {
        let mut w = win;
        let mut top = win;
        for _ in 0..16 {
            if w == self.root {
                break;
            }
            if self.class_of(w)?.is_some() {
                return Ok(Some(w));
            }
            top = w;
            match self.conn.query_tree(w).map_err(lost)?.reply() {
                Ok(t) => w = t.parent,
                Err(x11rb::errors::ReplyError::ConnectionError(e)) => return Err(lost(e)),
                Err(_) => return Ok(None),
            }
        }
        // Down from the top-level, breadth first, two levels.
        let mut level = vec![top];
        for _ in 0..2 {
            let mut next = Vec::new();
            for w in level {
                let children = match self.conn.query_tree(w).map_err(lost)?.reply() {
                    Ok(t) => t.children,
                    Err(x11rb::errors::ReplyError::ConnectionError(e)) => return Err(lost(e)),
                    Err(_) => Vec::new(),
                };
                for c in children {
                    if self.class_of(c)?.is_some() {
                        return Ok(Some(c));
                    }
                    next.push(c);
                }
            }
            level = next;
        }
        Ok(None)
    }

    /// Asks the server what has focus. Returns the answer, whether keys
    /// follow the pointer (PointerRoot), and the sequence number that ends
    /// the asking: the answer holds if no change came before it.
    fn ask(&mut self) -> Result<(Resolved, bool, u64), Lost> {
        let focus = self.conn.get_input_focus().map_err(lost)?;
        let pointer = self.conn.query_pointer(self.root).map_err(lost)?;
        let focus = focus.reply().map_err(lost)?.focus;
        let pointer = pointer.reply().map_err(lost)?;
        let wm_check = self.window_property(self.root, self.atoms.check)?;
        let active = self.window_property(self.root, self.atoms.active)?;
        let resolved = self.judge_focus(focus, pointer.child, wm_check, active)?;
        tracing::debug!(
            focus,
            under_pointer = pointer.child,
            ?wm_check,
            ?active,
            grab = ?self.grab,
            ?resolved,
            "focus asked"
        );
        // A last question marks the end of the asking in the event stream.
        let last = self.conn.get_input_focus().map_err(lost)?;
        let end = last.sequence_number();
        last.reply().map_err(lost)?;
        Ok((resolved, focus == 1, end))
    }

    fn withheld(label: &str, why: String) -> Resolved {
        Resolved::Withheld {
            label: label.to_owned(),
            why,
        }
    }

    fn judge_focus(
        &mut self,
        focus: Window,
        under_pointer: Window,
        wm_check: Option<Window>,
        active: Option<Window>,
    ) -> Result<Resolved, Lost> {
        // A window manager that announced itself must still be there, or
        // its _NET_ACTIVE_WINDOW is stale.
        let wm = match wm_check {
            None => None,
            Some(w) => Some(self.window_property(w, self.atoms.check)? == Some(w)),
        };
        let target = match self.grab {
            Grab::To(w) => w,
            Grab::Unseen => {
                return Ok(Self::withheld(
                    "focus unknown",
                    "the keyboard is grabbed by a window this source cannot see".into(),
                ))
            }
            Grab::None => match focus {
                0 => {
                    return Ok(Self::withheld(
                        "focus unknown",
                        "no window has the input focus (None)".into(),
                    ))
                }
                // PointerRoot: keys go to the window under the pointer.
                1 if under_pointer == 0 => self.root,
                1 => under_pointer,
                w => w,
            },
        };
        // Keys sent to the window manager's own window (openbox focuses it
        // when no client has focus) reach no application, as the root.
        let client = if target == self.root || (wm == Some(true) && wm_check == Some(target)) {
            None
        } else {
            match self.client_of(target)? {
                Some(c) => Some(c),
                None => {
                    return Ok(Self::withheld(
                        "focus unknown",
                        format!("the focused window 0x{target:x} has no readable WM_CLASS"),
                    ))
                }
            }
        };
        let focus = match client {
            // The bare root: keys reach no application.
            None => Focus::default(),
            Some(c) => {
                self.watch(c)?;
                let Some((instance, class)) = self.class_of(c)? else {
                    return Ok(Self::withheld(
                        "focus unknown",
                        format!("the focused window 0x{c:x} has no readable WM_CLASS"),
                    ));
                };
                Focus {
                    class: Some(class),
                    instance: Some(instance),
                    title: self.title_of(c)?,
                }
            }
        };
        // An excluded application first: status names it.
        if is_excluded(&focus, &self.excluded) {
            let label = focus.class.clone().unwrap_or_default();
            return Ok(Self::withheld(&label, EXCLUDED_APP.into()));
        }
        match wm {
            Some(false) => {
                return Ok(Self::withheld(
                    "window manager gone",
                    "the window manager has gone (its _NET_SUPPORTING_WM_CHECK window no longer exists), so the focus cannot be checked".into(),
                ))
            }
            Some(true) if self.grab == Grab::None => {
                let active = active.filter(|w| *w != 0);
                if active != client {
                    return Ok(Self::withheld(
                        "wm disagrees",
                        format!(
                            "the window manager's active window ({}) is not the input focus ({})",
                            active.map_or("none".into(), |w| format!("0x{w:x}")),
                            client.map_or("none".into(), |w| format!("0x{w:x}")),
                        ),
                    ));
                }
            }
            _ => {}
        }
        Ok(Resolved::App(focus))
    }

    /// Waits up to `wait` for X events; returns them with their sequence
    /// numbers, in order.
    fn events(&self, wait: Duration) -> Result<Vec<(XEvent, u64)>, Lost> {
        let mut out = Vec::new();
        while let Some(e) = self.conn.poll_for_event_with_sequence().map_err(lost)? {
            out.push(e);
        }
        if !out.is_empty() {
            return Ok(out);
        }
        let fd = self.conn.stream().as_fd();
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: i64::try_from(wait.as_nanos()).unwrap_or(50_000_000),
        };
        let _ = rustix::event::poll(&mut fds, Some(&timeout));
        while let Some(e) = self.conn.poll_for_event_with_sequence().map_err(lost)? {
            out.push(e);
        }
        Ok(out)
    }
}

/// One round of the tracker: takes the events that came (waiting up to
/// `wait` for some while the focus is resolved), and resolves the current
/// segment if it is not. Returns the newly resolved state, if any.
fn round(t: &mut Tracker, wait: Duration) -> Result<Option<Resolved>, Lost> {
    let wait = if t.seg.state.is_some() {
        wait
    } else {
        Duration::ZERO
    };
    for (ev, _) in t.events(wait)? {
        t.take(ev)?;
    }
    if t.seg.state.is_some() {
        return Ok(None);
    }
    let (answer, follows_pointer, end) = t.ask()?;
    // Every event generated before the server answered the last question
    // is queued now. A change among them may have raced the questions: the
    // answer is then dropped, and the next round asks again.
    let mut queued = Vec::new();
    while let Some(e) = t.conn.poll_for_event_with_sequence().map_err(lost)? {
        queued.push(e);
    }
    let crossings = follows_pointer || t.seg.follows_pointer;
    let raced = queued
        .iter()
        .any(|(ev, seq)| *seq < end && t.classify(ev, crossings));
    let landed = if raced {
        None
    } else {
        t.seg.follows_pointer = follows_pointer;
        Some(land(t, answer))
    };
    for (ev, _) in queued {
        t.take(ev)?;
    }
    Ok(landed)
}

/// Puts `state` in force for the current segment and judges its keys.
fn land(t: &mut Tracker, state: Resolved) -> Resolved {
    let verdict = match &state {
        Resolved::App(_) => Verdict::Record,
        Resolved::Withheld { why, .. } => Verdict::Withhold(why.clone()),
    };
    let pending = std::mem::take(&mut t.seg.pending);
    t.judge.decide(&pending, &verdict);
    t.judge.set_current(Some(verdict));
    t.seg.state = Some(state.clone());
    state
}

/// Marks the tracker down when its thread ends, however it ends.
struct DownOnExit(Arc<KeyJudge>);

impl Drop for DownOnExit {
    fn drop(&mut self) {
        let mut j = self.0.lock();
        if j.down.is_none() {
            j.down = Some("the focus source has stopped".into());
            j.current = None;
        }
        self.0.changed.notify_all();
    }
}

/// Starts the focus source. It stores `window.focus` events when the
/// consent grants `window.apps` (titles only with `window.titles`), and
/// always judges keys for exclusions (see the module's comment).
pub fn spawn(ctl: Arc<Control>, clock: SessionClock, excluded: Vec<String>) -> SourceState {
    let judge = ctl.key_judge();
    let mut t = match Tracker::connect(excluded, judge.clone()) {
        Ok(t) => t,
        Err(why) => {
            judge.set_down(Some(why.clone()));
            return SourceState::Unavailable(why);
        }
    };
    judge.set_down(None);
    let ctl_for_join = ctl.clone();
    let judge_for_start = judge.clone();
    let worker = std::thread::Builder::new()
        .name("candor-focus".into())
        .spawn(move || {
            // However the thread ends (a stop, a lost server, a panic), keys
            // are withheld from then on rather than wait for verdicts.
            let _down = DownOnExit(judge.clone());
            let mut last: Option<Resolved> = None;
            let mut last_app: Option<Focus> = None;
            let mut flag_pending: Option<(String, String, crate::event::Stamp, Instant)> = None;
            while !ctl.stopping() {
                let landed = match round(&mut t, WAIT) {
                    Ok(l) => l,
                    Err(Lost(why)) => {
                        tracing::error!("focus source stopped: {why}; keys are withheld");
                        judge.set_down(Some(why.clone()));
                        ctl.set_excluded(Some("focus unknown".into()), clock.stamp());
                        ctl.set_state("focus", SourceState::Unavailable(why));
                        break;
                    }
                };
                if flag_pending
                    .as_ref()
                    .is_some_and(|(_, _, _, t0)| t0.elapsed() >= FLAG_AFTER)
                {
                    if let Some((label, why, since, _)) = flag_pending.take() {
                        tracing::warn!("input is withheld: {why}");
                        ctl.set_excluded(Some(label), since);
                    }
                }
                let Some(state) = landed else {
                    continue;
                };
                if last.as_ref() == Some(&state) {
                    continue;
                }
                let at = clock.stamp();
                match &state {
                    Resolved::Withheld { label, why } => {
                        if !matches!(&last, Some(Resolved::Withheld { why: w, .. }) if w == why) {
                            tracing::info!(%why, "input withheld");
                        }
                        if why == EXCLUDED_APP {
                            flag_pending = None;
                            ctl.set_excluded(Some(label.clone()), at);
                        } else if flag_pending.is_none() && !ctl.is_excluded() {
                            flag_pending = Some((label.clone(), why.clone(), at, Instant::now()));
                        }
                    }
                    Resolved::App(focus) => {
                        flag_pending = None;
                        ctl.set_excluded(None, at);
                        let app_changed = last_app.as_ref().is_none_or(|l| l.class != focus.class);
                        let titles = ctl.gate().grants(crate::registry::Scope::WindowTitles);
                        let differs = last_app.as_ref() != Some(focus);
                        if differs && (app_changed || titles) {
                            let mut e = Event::new(Kind::WindowFocus, at);
                            let ok = focus
                                .class
                                .as_ref()
                                .is_none_or(|c| e.set("app", c.as_str()).is_ok())
                                && focus
                                    .title
                                    .as_ref()
                                    .is_none_or(|t| e.set("title", t.as_str()).is_ok());
                            if ok {
                                ctl.deliver(e);
                            }
                        }
                        last_app = Some(focus.clone());
                    }
                }
                last = Some(state);
            }
        });
    match worker {
        Ok(w) => {
            ctl_for_join.adopt(w);
            SourceState::Running
        }
        Err(e) => {
            let why = format!("cannot start the focus thread: {e}");
            judge_for_start.set_down(Some(why.clone()));
            SourceState::Unavailable(why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions_match_class_or_instance_without_case() {
        let list: Vec<String> = DEFAULT_EXCLUDED.iter().map(|s| (*s).to_owned()).collect();
        let f = |instance: &str, class: &str| Focus {
            class: Some(class.into()),
            instance: Some(instance.into()),
            title: None,
        };
        assert!(is_excluded(&f("xterm", "KeePassXC"), &list));
        assert!(is_excluded(&f("pinentry-curses", "Pinentry-curses"), &list));
        assert!(!is_excluded(&f("code", "Code"), &list));
        assert!(!is_excluded(&Focus::default(), &list));
    }

    fn judge_with(raws: &[(u32, bool, Option<Verdict>)]) -> Arc<KeyJudge> {
        let judge = Arc::new(KeyJudge::default());
        judge.set_down(None);
        for (code, press, v) in raws {
            judge.push(*code, *press, v.clone());
        }
        judge
    }

    fn no() -> Option<Verdict> {
        Some(Verdict::Withhold("excluded".into()))
    }

    #[test]
    fn keys_take_the_verdict_of_their_own_raw_event_in_order() {
        // a down, a up (recorded), then b down, b up (withheld).
        let judge = judge_with(&[
            (38, true, Some(Verdict::Record)),
            (38, false, Some(Verdict::Record)),
            (56, true, no()),
            (56, false, no()),
        ]);
        let mut m = KeyMatcher::new(judge);
        let t = Instant::now();
        assert_eq!(m.judge(rdev::Key::KeyA, true, t), Verdict::Record);
        assert_eq!(m.judge(rdev::Key::KeyA, false, t), Verdict::Record);
        assert!(!m.judge(rdev::Key::KeyB, true, t).records());
        assert!(!m.judge(rdev::Key::KeyB, false, t).records());
    }

    #[test]
    fn a_key_waits_for_its_verdict_and_is_withheld_if_none_comes() {
        let judge = judge_with(&[(38, true, None)]);
        let mut m = KeyMatcher::new(judge.clone());
        let decider = {
            let judge = judge.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                judge.decide(&[0], &Verdict::Record);
            })
        };
        let t = Instant::now();
        assert_eq!(m.judge(rdev::Key::KeyA, true, t), Verdict::Record);
        assert!(t.elapsed() >= Duration::from_millis(50));
        decider.join().unwrap();
        // Its release never gets a verdict: withheld after SETTLE.
        judge.push(38, false, None);
        let t = Instant::now();
        assert!(!m.judge(rdev::Key::KeyA, false, t).records());
        assert!(t.elapsed() >= SETTLE);
    }

    #[test]
    fn out_of_step_streams_withhold_until_a_pause_then_pair_again() {
        // X saw a release rdev did not report before b.
        let judge = judge_with(&[
            (38, true, Some(Verdict::Record)),
            (50, false, Some(Verdict::Record)),
            (38, false, Some(Verdict::Record)),
        ]);
        let mut m = KeyMatcher::new(judge.clone());
        let t = Instant::now();
        assert_eq!(m.judge(rdev::Key::KeyA, true, t), Verdict::Record);
        // Paired with the stray Shift release: caught by code.
        assert!(!m.judge(rdev::Key::KeyA, false, t).records());
        // Still typing: no guessing.
        judge.push(56, true, Some(Verdict::Record));
        assert!(!m.judge(rdev::Key::KeyB, true, t).records());
        judge.push(56, false, Some(Verdict::Record));
        assert!(!m.judge(rdev::Key::KeyB, false, t).records());
        // After a pause, the next key pairs with its own raw event.
        std::thread::sleep(QUIET + Duration::from_millis(20));
        judge.push(52, true, Some(Verdict::Record));
        let t = Instant::now();
        assert_eq!(m.judge(rdev::Key::KeyZ, true, t), Verdict::Record);
        judge.push(52, false, no());
        assert!(!m.judge(rdev::Key::KeyZ, false, t).records());
    }

    #[test]
    fn autorepeat_is_judged_by_its_press_and_the_focus_now() {
        let judge = judge_with(&[(38, true, Some(Verdict::Record))]);
        judge.set_current(Some(Verdict::Record));
        let mut m = KeyMatcher::new(judge.clone());
        let t = Instant::now();
        assert_eq!(m.judge(rdev::Key::KeyA, true, t), Verdict::Record);
        // Repeats have no raw event of their own.
        assert_eq!(m.judge(rdev::Key::KeyA, true, t), Verdict::Record);
        judge.set_current(None);
        assert!(!m.judge(rdev::Key::KeyA, true, t).records());
        judge.set_current(Some(Verdict::Record));
        // Once withheld, the held key stays withheld.
        assert!(!m.judge(rdev::Key::KeyA, true, t).records());
    }

    #[test]
    fn without_a_tracker_every_key_is_withheld() {
        let judge = Arc::new(KeyJudge::default());
        let mut m = KeyMatcher::new(judge.clone());
        let t = Instant::now();
        assert!(!m.judge(rdev::Key::KeyA, true, t).records());
        judge.set_down(None);
        judge.set_down(Some("the X server went away".into()));
        judge.push(38, false, Some(Verdict::Record));
        assert!(!m.judge(rdev::Key::KeyA, false, t).records());
    }
}
