//! The focused window, from X11: `_NET_ACTIVE_WINDOW` on the root window
//! (set by the window manager), its `WM_CLASS`, and its title.
//!
//! Without a window manager there is no `_NET_ACTIVE_WINDOW`; then the X
//! input focus is used, and when that is the root or PointerRoot, focus is
//! recorded as unknown rather than guessed.
//!
//! This source also enforces exclusions: while an excluded application (a
//! password manager, a PIN prompt) has focus, input is not delivered, and
//! the span is written as one `excluded` gap. It therefore runs whenever
//! keyboard or mouse capture runs, even without `window.apps`.
//!
//! Focus is followed through X events, not only polling: the root window's
//! `_NET_ACTIVE_WINDOW` and the focused window's title and class are
//! watched for changes, so an exclusion takes hold within milliseconds of
//! the window manager switching focus. A slower poll remains as a safety
//! net, and is the only way without a window manager.

use std::sync::Arc;
use std::time::Duration;

use std::os::fd::AsFd;
use std::time::Instant;

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ChangeWindowAttributesAux, ConnectionExt, EventMask, Window,
};
use x11rb::protocol::Event as XEvent;
use x11rb::rust_connection::RustConnection;

use super::{Control, SourceState};
use crate::event::{Event, SessionClock};
use crate::registry::Kind;

/// How often focus is re-read without any X event: a safety net with a
/// window manager, and the only way without one.
pub const POLL_WITH_WM: Duration = Duration::from_millis(500);
pub const POLL_WITHOUT_WM: Duration = Duration::from_millis(100);
/// Longest wait for an X event before checking for a stop; X events
/// themselves wake the thread at once.
const WAIT: Duration = Duration::from_millis(100);

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
    /// `WM_CLASS` class; `None` when focus is unknown.
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

struct X {
    conn: RustConnection,
    root: Window,
    active: Atom,
    net_wm_name: Atom,
    utf8: Atom,
}

impl X {
    fn connect() -> Result<X, String> {
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
        let x = X {
            active: atom(b"_NET_ACTIVE_WINDOW")?,
            net_wm_name: atom(b"_NET_WM_NAME")?,
            utf8: atom(b"UTF8_STRING")?,
            root,
            conn,
        };
        x.watch(root);
        Ok(x)
    }

    /// Asks X to report property changes of `win` (its title, class, or on
    /// the root, the active window). A window that has gone is ignored.
    fn watch(&self, win: Window) {
        let aux = ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE);
        if let Ok(cookie) = self.conn.change_window_attributes(win, &aux) {
            let _ = cookie.check();
        }
    }

    fn has_wm(&self) -> bool {
        self.property(self.root, self.active, AtomEnum::WINDOW.into())
            .is_some()
    }

    /// Whether X reported something that may change what has focus. Drains
    /// the queue, then waits up to `wait` for more.
    fn changed(&self, wait: Duration) -> Result<bool, String> {
        let relevant = |ev: &XEvent| match ev {
            XEvent::PropertyNotify(p) => {
                p.atom == self.active
                    || p.atom == self.net_wm_name
                    || p.atom == u32::from(AtomEnum::WM_NAME)
                    || p.atom == u32::from(AtomEnum::WM_CLASS)
            }
            _ => false,
        };
        let mut changed = false;
        while let Some(ev) = self
            .conn
            .poll_for_event()
            .map_err(|e| format!("the X server went away: {e}"))?
        {
            changed |= relevant(&ev);
        }
        if changed {
            return Ok(true);
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
        while let Some(ev) = self
            .conn
            .poll_for_event()
            .map_err(|e| format!("the X server went away: {e}"))?
        {
            changed |= relevant(&ev);
        }
        Ok(changed)
    }

    fn property(&self, win: Window, prop: Atom, ty: Atom) -> Option<Vec<u8>> {
        let reply = self
            .conn
            .get_property(false, win, prop, ty, 0, 1024)
            .ok()?
            .reply()
            .ok()?;
        (reply.value_len > 0).then_some(reply.value)
    }

    fn class_of(&self, win: Window) -> Option<(String, String)> {
        let raw = self.property(win, AtomEnum::WM_CLASS.into(), AtomEnum::STRING.into())?;
        let mut parts = raw
            .split(|b| *b == 0)
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let instance = parts.next().unwrap_or_default();
        let class = parts.next().unwrap_or_default();
        Some((instance, class))
    }

    fn title_of(&self, win: Window) -> Option<String> {
        self.property(win, self.net_wm_name, self.utf8)
            .or_else(|| self.property(win, AtomEnum::WM_NAME.into(), AtomEnum::STRING.into()))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// The focused client window, if one can be named.
    fn focused(&self) -> Result<Focus, String> {
        let from_wm = self
            .property(self.root, self.active, AtomEnum::WINDOW.into())
            .and_then(|v| {
                v.get(..4)
                    .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            })
            .filter(|w| *w != 0);
        let mut win = match from_wm {
            Some(w) => w,
            None => {
                let focus = self
                    .conn
                    .get_input_focus()
                    .map_err(|e| e.to_string())?
                    .reply()
                    .map_err(|e| format!("the X server went away: {e}"))?
                    .focus;
                // 0 is None and 1 is PointerRoot: nobody in particular.
                if focus <= 1 || focus == self.root {
                    return Ok(Focus::default());
                }
                focus
            }
        };
        // Toolkits may focus an inner window; WM_CLASS sits on the client.
        for _ in 0..8 {
            if let Some((instance, class)) = self.class_of(win) {
                // Follow its title (and class) from now on.
                self.watch(win);
                return Ok(Focus {
                    class: Some(class),
                    instance: Some(instance),
                    title: self.title_of(win),
                });
            }
            let tree = self
                .conn
                .query_tree(win)
                .map_err(|e| e.to_string())?
                .reply();
            match tree {
                Ok(t) if t.parent != 0 && t.parent != self.root => win = t.parent,
                _ => break,
            }
        }
        Ok(Focus::default())
    }
}

/// Starts the focus source. It stores `window.focus` events when the
/// consent grants `window.apps` (titles only with `window.titles`), and
/// always enforces exclusions.
pub fn spawn(ctl: Arc<Control>, clock: SessionClock, excluded: Vec<String>) -> SourceState {
    let x = match X::connect() {
        Ok(x) => x,
        Err(why) => return SourceState::Unavailable(why),
    };
    let ctl_for_join = ctl.clone();
    let worker = std::thread::Builder::new()
        .name("candor-focus".into())
        .spawn(move || {
            let mut last: Option<Focus> = None;
            let mut checked: Option<Instant> = None;
            let mut poll = POLL_WITHOUT_WM;
            while !ctl.stopping() {
                let changed = match x.changed(WAIT) {
                    Ok(c) => c,
                    Err(why) => {
                        ctl.set_state("focus", SourceState::Unavailable(why));
                        break;
                    }
                };
                if !changed && checked.is_some_and(|t| t.elapsed() < poll) {
                    continue;
                }
                checked = Some(Instant::now());
                poll = if x.has_wm() {
                    POLL_WITH_WM
                } else {
                    POLL_WITHOUT_WM
                };
                let focus = match x.focused() {
                    Ok(f) => f,
                    Err(why) => {
                        ctl.set_state("focus", SourceState::Unavailable(why));
                        break;
                    }
                };
                if last.as_ref() != Some(&focus) {
                    let at = clock.stamp();
                    if is_excluded(&focus, &excluded) {
                        ctl.set_excluded(focus.class.clone(), at);
                    } else {
                        ctl.set_excluded(None, at);
                        let app_changed = last.as_ref().is_none_or(|l| l.class != focus.class);
                        let titles = ctl.gate().grants(crate::registry::Scope::WindowTitles);
                        if app_changed || titles {
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
                    }
                    last = Some(focus);
                }
            }
        });
    match worker {
        Ok(w) => {
            ctl_for_join.adopt(w);
            SourceState::Running
        }
        Err(e) => SourceState::Unavailable(format!("cannot start the focus thread: {e}")),
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
}
