//! The consent screen: `candor consent`, a full-screen terminal UI that
//! works in 80×24.
//!
//! 1. The whole notice, scrollable; continuing is possible only once its
//!    end has been on screen.
//! 2. Each scope with its description, sensitivity and retention, all off
//!    by default (or as currently granted, when amending), toggled one by one.
//! 3. A summary, confirmed by typing the phrase `I agree`.
//!
//! Esc or q cancels at any step and records nothing. Run again with a
//! consent in force, it offers to amend or revoke it. The screen's logic
//! (`App`) is kept apart from drawing so that it can be tested directly; the
//! test suite also drives the real binary through tmux.

use std::collections::BTreeSet;
use std::fmt;
use std::io::IsTerminal;

use ratatui::crossterm::event::{
    self, Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers,
};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use super::notice::{notice_hash, NOTICE};
use super::record::{ConsentRecord, Method};
use super::state::Status;
use super::{ConsentError, CONFIRM_PHRASE, DEFAULT_VALIDITY};
use crate::registry::Scope;
use crate::store::query::format_ns;
use crate::store::Store;

/// What the engineer decided.
#[derive(Debug)]
pub enum Outcome {
    Granted(ConsentRecord),
    Amended(ConsentRecord),
    Revoked { erased: bool },
    Cancelled,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Granted(r) | Outcome::Amended(r) => write!(
                f,
                "consent {} {} for {} until {}",
                r.record_id,
                if matches!(self, Outcome::Granted(_)) {
                    "recorded"
                } else {
                    "amended"
                },
                r.scopes.join(", "),
                r.expires_at
            ),
            Outcome::Revoked { erased: false } => {
                write!(
                    f,
                    "consent revoked; a running daemon stops recording within a second"
                )
            }
            Outcome::Revoked { erased: true } => {
                write!(f, "consent revoked and everything recorded erased")
            }
            Outcome::Cancelled => write!(f, "cancelled: nothing was recorded"),
        }
    }
}

/// A decision that ends the screen.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Grant(Vec<Scope>),
    Revoke { erase: bool },
    Cancel,
}

#[derive(Debug, PartialEq, Eq)]
enum Step {
    Menu,
    Notice,
    Scopes,
    Summary,
    RevokeConfirm,
}

/// The screen's state, without any terminal.
pub struct App {
    step: Step,
    /// The consent in force, when amending.
    current: Option<ConsentRecord>,
    status_line: String,
    selected: BTreeSet<Scope>,
    cursor: usize,
    scroll: usize,
    /// The notice wrapped to the body width; rebuilt when the width changes.
    lines: Vec<String>,
    width: u16,
    /// Rows of notice the body shows.
    view: usize,
    seen_end: bool,
    input: String,
    message: Option<String>,
}

fn toggleable() -> Vec<Scope> {
    Scope::ALL
        .into_iter()
        .filter(|s| s.decl().toggleable)
        .collect()
}

/// Word-wraps the notice to `width` columns, keeping its line structure.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(20);
    let mut out = Vec::new();
    for raw in text.lines() {
        let indent = raw.len() - raw.trim_start().len();
        let hang = if raw.trim_start().starts_with("- ") {
            indent + 2
        } else {
            indent
        };
        let mut line = String::new();
        for word in raw.split_whitespace() {
            let cur = line.chars().count();
            if cur > 0 && cur + 1 + word.chars().count() > width {
                out.push(std::mem::take(&mut line));
                line.push_str(&" ".repeat(hang));
            } else if cur > 0 && !line.ends_with(' ') {
                line.push(' ');
            } else if cur == 0 {
                line.push_str(&" ".repeat(indent));
            }
            line.push_str(word);
        }
        out.push(line);
    }
    out
}

impl App {
    pub fn new(status: &Status) -> App {
        let (step, current, status_line) = match status {
            Status::Active(r) => (
                Step::Menu,
                Some(r.clone()),
                format!(
                    "You consented on {} to: {}. It expires on {}.",
                    r.granted_at,
                    r.scopes.join(", "),
                    r.expires_at
                ),
            ),
            Status::None => (Step::Notice, None, String::new()),
            Status::Expired(r) => (
                Step::Notice,
                None,
                format!("Your consent expired on {}.", r.expires_at),
            ),
            Status::Revoked { at_ns, .. } => (
                Step::Notice,
                None,
                format!("You revoked your consent on {}.", format_ns(*at_ns)),
            ),
            Status::NoticeChanged { .. } => (
                Step::Notice,
                None,
                "The notice has changed since you consented: please read it again.".to_owned(),
            ),
        };
        let selected = current
            .as_ref()
            .map(|r| {
                r.scope_set()
                    .into_iter()
                    .filter(|s| s.decl().toggleable)
                    .collect()
            })
            .unwrap_or_default();
        let mut app = App {
            step,
            current,
            status_line,
            selected,
            cursor: 0,
            scroll: 0,
            lines: Vec::new(),
            width: 0,
            view: 1,
            seen_end: false,
            input: String::new(),
            message: None,
        };
        app.resize(80, 24);
        app
    }

    /// Adapts to the terminal size (the body is the frame minus header,
    /// footer and borders).
    pub fn resize(&mut self, width: u16, height: u16) {
        let body_width = width.saturating_sub(4);
        if body_width != self.width {
            self.width = body_width;
            self.lines = wrap(NOTICE, usize::from(body_width));
        }
        self.view = usize::from(height.saturating_sub(7)).max(1);
        self.clamp_scroll();
    }

    fn max_scroll(&self) -> usize {
        self.lines.len().saturating_sub(self.view)
    }

    fn clamp_scroll(&mut self) {
        self.scroll = self.scroll.min(self.max_scroll());
        if self.step == Step::Notice && self.scroll >= self.max_scroll() {
            self.seen_end = true;
        }
    }

    fn toggle(&mut self, scope: Scope) {
        if self.selected.remove(&scope) {
            // Turning a scope off turns off what depends on it.
            self.selected.retain(|s| !s.requires().contains(&scope));
        } else {
            self.selected.insert(scope);
            self.selected.extend(scope.requires());
        }
    }

    /// Handles one key; returns a decision when the screen is done.
    pub fn key(&mut self, key: KeyEvent) -> Option<Decision> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl_c =
            key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
        if key.code == KeyCode::Esc || key.code == KeyCode::Char('q') || ctrl_c {
            return Some(Decision::Cancel);
        }
        self.message = None;
        match self.step {
            Step::Menu => match key.code {
                KeyCode::Char('a') => {
                    self.cursor = 0;
                    self.step = Step::Scopes;
                }
                KeyCode::Char('r') => self.step = Step::RevokeConfirm,
                KeyCode::Char('v') => {
                    self.scroll = 0;
                    self.seen_end = false;
                    self.step = Step::Notice;
                    self.clamp_scroll();
                }
                _ => {}
            },
            Step::RevokeConfirm => match key.code {
                KeyCode::Char('y') => return Some(Decision::Revoke { erase: false }),
                KeyCode::Char('e') => return Some(Decision::Revoke { erase: true }),
                KeyCode::Char('n') | KeyCode::Backspace => self.step = Step::Menu,
                _ => {}
            },
            Step::Notice => {
                let page = self.view.saturating_sub(1).max(1);
                match key.code {
                    KeyCode::Down | KeyCode::Char('j') => self.scroll += 1,
                    KeyCode::Up | KeyCode::Char('k') => self.scroll = self.scroll.saturating_sub(1),
                    KeyCode::PageDown | KeyCode::Char(' ') => self.scroll += page,
                    KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(page),
                    KeyCode::Home | KeyCode::Char('g') => self.scroll = 0,
                    KeyCode::End | KeyCode::Char('G') => self.scroll = self.max_scroll(),
                    KeyCode::Enter if self.seen_end => {
                        self.cursor = 0;
                        self.step = Step::Scopes;
                    }
                    KeyCode::Enter => {
                        self.message = Some("Please read the notice to the end first.".into());
                    }
                    _ => {}
                }
                self.clamp_scroll();
            }
            Step::Scopes => {
                let scopes = toggleable();
                match key.code {
                    KeyCode::Down | KeyCode::Char('j') => {
                        self.cursor = (self.cursor + 1).min(scopes.len() - 1)
                    }
                    KeyCode::Up | KeyCode::Char('k') => self.cursor = self.cursor.saturating_sub(1),
                    KeyCode::Char(' ') | KeyCode::Char('x') => self.toggle(scopes[self.cursor]),
                    KeyCode::Enter if self.selected.is_empty() => {
                        self.message =
                            Some("Choose at least one scope, or press Esc to leave.".into());
                    }
                    KeyCode::Enter => {
                        self.input.clear();
                        self.step = Step::Summary;
                    }
                    _ => {}
                }
            }
            Step::Summary => match key.code {
                KeyCode::Enter if self.input == CONFIRM_PHRASE => {
                    return Some(Decision::Grant(self.selected.iter().copied().collect()));
                }
                KeyCode::Enter => {
                    self.message = Some(format!("Type exactly `{CONFIRM_PHRASE}` to confirm."));
                }
                KeyCode::Backspace if self.input.is_empty() => self.step = Step::Scopes,
                KeyCode::Backspace => {
                    self.input.pop();
                }
                KeyCode::Char(c) if self.input.chars().count() < 40 => self.input.push(c),
                _ => {}
            },
        }
        None
    }

    fn step_title(&self) -> &'static str {
        match self.step {
            Step::Menu => "Your consent",
            Step::Notice => "Step 1 of 3: read the notice",
            Step::Scopes => "Step 2 of 3: choose what to share",
            Step::Summary => "Step 3 of 3: confirm",
            Step::RevokeConfirm => "Revoke your consent",
        }
    }

    fn footer(&self) -> String {
        match self.step {
            Step::Menu => "a: amend scopes   r: revoke   v: read the notice   q/Esc: leave".into(),
            Step::Notice if self.seen_end => {
                "End of notice reached. Enter: continue   ↑/↓ PgUp/PgDn: scroll   q/Esc: cancel"
                    .into()
            }
            Step::Notice => {
                let pct = if self.lines.is_empty() {
                    100
                } else {
                    ((self.scroll + self.view).min(self.lines.len()) * 100) / self.lines.len()
                };
                format!("Scroll to the end to continue ({pct}%).   ↓/PgDn/Space: scroll   q/Esc: cancel")
            }
            Step::Scopes => "↑/↓: move   Space: toggle   Enter: continue   q/Esc: cancel".into(),
            Step::Summary => format!(
                "Type `{CONFIRM_PHRASE}` and press Enter.   Backspace on empty: back   Esc: cancel"
            ),
            Step::RevokeConfirm => {
                "y: revoke   e: revoke and erase everything   n: back   q/Esc: cancel".into()
            }
        }
    }

    pub fn draw(&self, frame: &mut Frame) {
        let [head, body, foot] = Layout::vertical([
            Constraint::Length(3),
            Constraint::Min(3),
            Constraint::Length(2),
        ])
        .areas(frame.area());
        let title = Paragraph::new(vec![
            Line::from(vec![
                Span::styled("Candor consent", Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(format!("  ·  {}", self.step_title())),
            ]),
            Line::from(self.status_line.clone()).italic(),
        ])
        .block(Block::new().borders(Borders::BOTTOM));
        frame.render_widget(title, head);
        match self.step {
            Step::Menu => self.draw_menu(frame, body),
            Step::Notice => self.draw_notice(frame, body),
            Step::Scopes => self.draw_scopes(frame, body),
            Step::Summary => self.draw_summary(frame, body),
            Step::RevokeConfirm => self.draw_revoke(frame, body),
        }
        let mut footer = vec![Line::from(self.footer())];
        if let Some(m) = &self.message {
            footer.insert(0, Line::from(m.clone()).bold());
        }
        frame.render_widget(Paragraph::new(footer), foot);
    }

    fn draw_menu(&self, frame: &mut Frame, area: Rect) {
        let mut lines = vec![Line::from("Your current consent covers:"), Line::from("")];
        if let Some(r) = &self.current {
            for s in r.scope_set() {
                lines.push(Line::from(format!(
                    "  • {:<15} {}",
                    s.name(),
                    s.decl().title
                )));
            }
        }
        lines.push(Line::from(""));
        lines.push(Line::from(
            "Press a to change what you share, r to withdraw your consent.",
        ));
        frame.render_widget(Paragraph::new(lines).block(Block::bordered()), area);
    }

    fn draw_notice(&self, frame: &mut Frame, area: Rect) {
        let visible: Vec<Line> = self
            .lines
            .iter()
            .skip(self.scroll)
            .take(self.view)
            .map(|l| {
                if let Some(h) = l.trim_start().strip_prefix("### ") {
                    Line::from(h.to_owned()).bold()
                } else if let Some(h) = l
                    .trim_start()
                    .strip_prefix("## ")
                    .or_else(|| l.strip_prefix("# "))
                {
                    Line::from(h.to_owned()).bold().underlined()
                } else {
                    Line::from(l.clone())
                }
            })
            .collect();
        frame.render_widget(
            Paragraph::new(visible).block(Block::bordered().title(" CONSENT.md ")),
            area,
        );
    }

    fn draw_scopes(&self, frame: &mut Frame, area: Rect) {
        // Every scope fits when the terminal allows; otherwise the list
        // scrolls to keep the cursor in view.
        let rows = u16::try_from(Scope::ALL.len() + 2).unwrap_or(u16::MAX);
        let [list, detail] =
            Layout::vertical([Constraint::Length(rows), Constraint::Min(5)]).areas(area);
        let mut lines = vec![Line::from(format!(
            "  [always] {:<15} {}",
            "capture.meta",
            Scope::CaptureMeta.decl().title
        ))];
        for (i, s) in toggleable().into_iter().enumerate() {
            let mark = if self.selected.contains(&s) {
                "[x]"
            } else {
                "[ ]"
            };
            let text = format!(
                "{} {mark}    {:<15} {}",
                if i == self.cursor { ">" } else { " " },
                s.name(),
                s.decl().title
            );
            let line = Line::from(text);
            lines.push(if i == self.cursor {
                line.reversed()
            } else {
                line
            });
        }
        let inner = usize::from(list.height.saturating_sub(2)).max(1);
        let cursor_line = self.cursor + 1;
        let offset = (cursor_line + 1).saturating_sub(inner);
        frame.render_widget(
            Paragraph::new(lines)
                .scroll((u16::try_from(offset).unwrap_or(0), 0))
                .block(Block::bordered().title(" Scopes (all off unless you turn them on) ")),
            list,
        );
        let s = toggleable()[self.cursor];
        let d = s.decl();
        let mut text = vec![
            Line::from(format!(
                "{} · sensitivity: {} · kept up to {} days",
                d.name,
                d.sensitivity,
                s.retention_days()
            ))
            .bold(),
            Line::from(d.description),
        ];
        let needs = s.requires();
        if !needs.is_empty() {
            let names: Vec<&str> = needs.iter().map(|n| n.name()).collect();
            text.push(Line::from(format!("Needs: {}", names.join(", "))).italic());
        }
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .block(Block::bordered()),
            detail,
        );
    }

    fn draw_summary(&self, frame: &mut Frame, area: Rect) {
        let expires = format_ns(crate::event::wall_now_ns() + DEFAULT_VALIDITY.as_nanos() as i64);
        let mut lines = vec![Line::from("You are about to allow Candor to record:")];
        for s in std::iter::once(Scope::CaptureMeta).chain(self.selected.iter().copied()) {
            // A scope that records nothing (keys.rhythm) widens what may
            // leave instead: say that, not a retention it does not have.
            let line = if s.records() {
                format!(
                    "  • {:<15} {} (kept up to {} days)",
                    s.name(),
                    s.decl().sensitivity,
                    s.retention_days()
                )
            } else {
                format!("  • {:<15} {}", s.name(), s.decl().title)
            };
            lines.push(Line::from(line));
        }
        lines.push(Line::from(format!(
            "until {} (180 days), unless you revoke it sooner.",
            &expires[..10]
        )));
        lines.push(Line::from(
            "Nothing else is recorded. You can pause, revoke and erase at any time.",
        ));
        lines.push(Line::from(""));
        lines.push(Line::from(vec![
            Span::raw(format!("Type `{CONFIRM_PHRASE}` to confirm: ")),
            Span::styled(
                format!("{}_", self.input),
                Style::new().add_modifier(Modifier::BOLD),
            ),
        ]));
        frame.render_widget(Paragraph::new(lines).block(Block::bordered()), area);
    }

    fn draw_revoke(&self, frame: &mut Frame, area: Rect) {
        let lines = vec![
            Line::from("Withdraw your consent? Recording stops within a second."),
            Line::from(""),
            Line::from("  y  revoke, and keep what was recorded (you can erase it later)"),
            Line::from("  e  revoke, and erase everything recorded"),
            Line::from("  n  go back"),
        ];
        frame.render_widget(Paragraph::new(lines).block(Block::bordered()), area);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error("the consent screen needs a terminal; for scripted setups use `candor consent grant --scopes … --accept-notice <sha256>`")]
    NoTerminal,
    #[error("terminal error: {0}")]
    Terminal(#[from] std::io::Error),
    #[error(transparent)]
    Consent(#[from] ConsentError),
}

/// Restores the terminal however the screen ends.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(std::io::stdout(), LeaveAlternateScreen);
    }
}

/// Shows the screen and applies the engineer's decision to the store.
pub fn run(store: &mut Store, now_ns: i64) -> Result<Outcome, ScreenError> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(ScreenError::NoTerminal);
    }
    let status = super::refresh(store, now_ns)?;
    let mut app = App::new(&status);
    let decision = {
        terminal::enable_raw_mode()?;
        let _guard = TerminalGuard;
        execute!(std::io::stdout(), EnterAlternateScreen)?;
        let mut term =
            ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
        loop {
            let size = term.size()?;
            app.resize(size.width, size.height);
            term.draw(|f| app.draw(f))?;
            match event::read()? {
                TermEvent::Key(k) => {
                    if let Some(d) = app.key(k) {
                        break d;
                    }
                }
                TermEvent::Resize(w, h) => app.resize(w, h),
                _ => {}
            }
        }
    };
    let now = crate::event::wall_now_ns();
    Ok(match decision {
        Decision::Cancel => Outcome::Cancelled,
        Decision::Revoke { erase } => {
            super::revoke(store, erase, now)?;
            Outcome::Revoked { erased: erase }
        }
        Decision::Grant(scopes) => {
            let amend = app.current.is_some();
            let record = super::grant(
                store,
                &scopes,
                &notice_hash(),
                Method::Screen,
                DEFAULT_VALIDITY,
                now,
            )?;
            if amend {
                Outcome::Amended(record)
            } else {
                Outcome::Granted(record)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(app: &mut App, code: KeyCode) -> Option<Decision> {
        app.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn type_str(app: &mut App, s: &str) {
        for c in s.chars() {
            assert_eq!(press(app, KeyCode::Char(c)), None);
        }
    }

    #[test]
    fn continuing_needs_the_end_of_the_notice() {
        let mut app = App::new(&Status::None);
        assert_eq!(app.step, Step::Notice);
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.step, Step::Notice, "continued without reading");
        assert!(app.message.is_some());
        while !app.seen_end {
            press(&mut app, KeyCode::PageDown);
        }
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.step, Step::Scopes);
        assert!(app.selected.is_empty(), "scopes must start off");
    }

    #[test]
    fn toggling_follows_prerequisites_and_the_phrase_must_match() {
        let mut app = App::new(&Status::None);
        press(&mut app, KeyCode::End);
        press(&mut app, KeyCode::Enter);
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.step, Step::Scopes, "continued with no scope");
        // Cursor 1 is keys.text: turning it on turns on keys.timing.
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Char(' '));
        assert_eq!(
            app.selected,
            BTreeSet::from([Scope::KeysTiming, Scope::KeysText])
        );
        // Turning keys.timing off turns keys.text off.
        press(&mut app, KeyCode::Up);
        press(&mut app, KeyCode::Char(' '));
        assert!(app.selected.is_empty());
        press(&mut app, KeyCode::Char(' '));
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.step, Step::Summary);
        type_str(&mut app, "I agre");
        assert_eq!(press(&mut app, KeyCode::Enter), None);
        type_str(&mut app, "e");
        assert_eq!(
            press(&mut app, KeyCode::Enter),
            Some(Decision::Grant(vec![Scope::KeysTiming]))
        );
    }

    #[test]
    fn escape_or_q_cancels_anywhere() {
        for step_keys in [&[][..], &[KeyCode::End, KeyCode::Enter][..]] {
            for cancel in [KeyCode::Esc, KeyCode::Char('q')] {
                let mut app = App::new(&Status::None);
                for k in step_keys {
                    press(&mut app, *k);
                }
                assert_eq!(press(&mut app, cancel), Some(Decision::Cancel));
            }
        }
    }

    #[test]
    fn with_consent_in_force_it_offers_amend_and_revoke() {
        let r = ConsentRecord::new(
            "s",
            &notice_hash(),
            &[Scope::Mouse],
            Method::Cli,
            0,
            10,
            None,
        );
        let mut app = App::new(&Status::Active(r));
        assert_eq!(app.step, Step::Menu);
        assert_eq!(app.selected, BTreeSet::from([Scope::Mouse]));
        press(&mut app, KeyCode::Char('r'));
        assert_eq!(
            press(&mut app, KeyCode::Char('e')),
            Some(Decision::Revoke { erase: true })
        );
    }

    #[test]
    fn the_notice_wraps_to_the_screen() {
        for line in wrap(NOTICE, 76) {
            assert!(line.chars().count() <= 76, "{line:?}");
        }
    }
}
