//! The ingest protocol, version 1: one JSON object per line, checked
//! against the event registry.
//!
//! ```text
//! {"v":1,"kind":"editor.edit","ts":1764340000123,"file":"/abs/src/lib.rs","offset":10,"deleted":0,"text":"x"}
//! ```
//!
//! - `v` is 1; `kind` is a registry kind that clients may send (the daemon's
//!   own kinds, keys and gaps among them, cannot be forged); `ts` is the
//!   client's wall clock in milliseconds since the Unix epoch, within a
//!   minute of the daemon's. Events are stamped by the daemon's own clock
//!   when they are recorded, so the store stays in order.
//! - Every other key is a field the registry declares for the kind, of the
//!   declared type. Two are translated rather than stored: editor kinds name
//!   their file by its absolute `file` (the daemon finds its workspace and
//!   applies the deny list and `.gitignore`), and command kinds give an
//!   absolute `cwd` (stored relative to its workspace, or `outside`).
//!   Clients can never set `workspace` or `path` themselves.
//! - A `shell.command` may carry an `id`: the first message with an `id`
//!   (the command, at preexec) opens the command, and a later one with the
//!   same `id` and an `exit` (at precmd) closes it; one event is stored.
//!
//! Every message is answered with one line: `{"ok":true}`, or
//! `{"ok":false,"error":"…"}` naming the problem, with `"not_recorded"`
//! set to a short reason when the message was valid but consent, a pause or
//! the rate limit kept it out.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

use crate::event::{Event, Stamp, Value};
use crate::registry::{FieldType, Kind};

pub const VERSION: i64 = 1;
/// Longest accepted line, newline excluded.
pub const MAX_LINE: usize = 64 * 1024;
/// How far a message's `ts` may be from the daemon's clock.
pub const MAX_SKEW_MS: f64 = 60_000.0;
const MAX_ID: usize = 128;
/// Paths longer or deeper than a file system allows are refused before
/// anything looks them up.
const MAX_PATH: usize = 4096;
const MAX_DEPTH: usize = 256;

/// A message that passed validation: the kind, its fields as a registry
/// event (not yet stamped), and what needs the daemon's context.
#[derive(Debug)]
pub struct Message {
    pub kind: Kind,
    pub id: Option<String>,
    /// The absolute file of an editor kind.
    pub file: Option<PathBuf>,
    /// The absolute working directory of a command kind.
    pub cwd: Option<PathBuf>,
    /// The fields the client set, checked by the registry; `workspace`,
    /// `path` and `cwd` are filled in by the daemon.
    pub event: Event,
}

/// Kinds whose file is given as `file` and stored as workspace + path.
pub fn names_a_file(kind: Kind) -> bool {
    kind.field_index("path").is_some() && kind.field_index("workspace").is_some()
}

/// Kinds whose working directory is given as `cwd`.
pub fn has_cwd(kind: Kind) -> bool {
    kind.field_index("cwd").is_some()
}

/// Whether the kind's `file` may be left out (an editor command run with
/// no file open).
fn file_optional(kind: Kind) -> bool {
    kind.field_index("path")
        .is_some_and(|i| kind.fields()[i].optional)
}

fn err(msg: impl Into<String>) -> String {
    msg.into()
}

fn abs_path(kind: Kind, key: &str, v: &Json) -> Result<PathBuf, String> {
    let s = v
        .as_str()
        .ok_or_else(|| err(format!("{kind}.{key} must be a string")))?;
    let p = Path::new(s);
    if !p.is_absolute() {
        return Err(err(format!("{kind}.{key} must be an absolute path")));
    }
    if p.components().any(|c| c == std::path::Component::ParentDir) {
        return Err(err(format!("{kind}.{key} must not contain `..`")));
    }
    if s.len() > MAX_PATH || p.components().count() > MAX_DEPTH {
        return Err(err(format!(
            "{kind}.{key} is longer than {MAX_PATH} bytes or {MAX_DEPTH} levels"
        )));
    }
    Ok(p.to_owned())
}

fn to_value(kind: Kind, name: &str, ty: FieldType, v: &Json) -> Result<Value, String> {
    let wrong = || {
        let expected = match ty {
            FieldType::Enum(allowed) => format!("one of {}", allowed.join(", ")),
            FieldType::Int => "an integer".into(),
            ty => format!("a {}", ty.name()),
        };
        err(format!("{kind}.{name} must be {expected}"))
    };
    match (ty, v) {
        (FieldType::Int, Json::Number(n)) => n.as_i64().map(Value::Int).ok_or_else(wrong),
        (FieldType::Bool, Json::Bool(b)) => Ok(Value::Bool(*b)),
        (FieldType::Str | FieldType::Enum(_), Json::String(s)) => Ok(Value::from(s.as_str())),
        _ => Err(wrong()),
    }
}

/// Parses and checks one line (without its newline) against the registry.
/// `now_ms` is the daemon's wall clock.
pub fn parse(line: &[u8], now_ms: f64) -> Result<Message, String> {
    let text = std::str::from_utf8(line).map_err(|_| err("the line is not UTF-8"))?;
    let obj: Map<String, Json> = match serde_json::from_str(text) {
        Ok(Json::Object(o)) => o,
        Ok(_) => return Err(err("a message must be a JSON object")),
        Err(e) => return Err(err(format!("not JSON: {e}"))),
    };
    match obj.get("v") {
        Some(v) if v.as_i64() == Some(VERSION) => {}
        Some(v) => {
            return Err(err(format!(
                "unsupported protocol version {v} (this daemon speaks 1)"
            )))
        }
        None => return Err(err("`v` is missing (the protocol version, 1)")),
    }
    let kind_name = obj
        .get("kind")
        .ok_or_else(|| err("`kind` is missing"))?
        .as_str()
        .ok_or_else(|| err("`kind` must be a string"))?;
    let kind =
        Kind::from_name(kind_name).ok_or_else(|| err(format!("unknown kind `{kind_name}`")))?;
    if !kind.decl().ingest {
        return Err(err(format!(
            "{kind} is recorded by the daemon itself and cannot be sent"
        )));
    }
    let ts = obj
        .get("ts")
        .ok_or_else(|| err("`ts` is missing (milliseconds since the Unix epoch)"))?
        .as_f64()
        .ok_or_else(|| err("`ts` must be a number (milliseconds since the Unix epoch)"))?;
    if !ts.is_finite() || (ts - now_ms).abs() > MAX_SKEW_MS {
        return Err(err(format!(
            "`ts` is {:.0} s away from the daemon's clock (it must be milliseconds since the Unix epoch, now)",
            (ts - now_ms) / 1000.0
        )));
    }
    let placeholder = Stamp {
        wall_ns: 0,
        mono_ns: 0,
    };
    let mut msg = Message {
        kind,
        id: None,
        file: None,
        cwd: None,
        event: Event::new(kind, placeholder),
    };
    for (key, v) in &obj {
        match key.as_str() {
            "v" | "kind" | "ts" => {}
            "id" if kind == Kind::ShellCommand => {
                let id = v.as_str().ok_or_else(|| err("`id` must be a string"))?;
                if id.is_empty() || id.len() > MAX_ID {
                    return Err(err(format!("`id` must be 1 to {MAX_ID} bytes")));
                }
                msg.id = Some(id.to_owned());
            }
            "file" if names_a_file(kind) => msg.file = Some(abs_path(kind, "file", v)?),
            "cwd" if has_cwd(kind) => msg.cwd = Some(abs_path(kind, "cwd", v)?),
            "workspace" | "path" if names_a_file(kind) => {
                return Err(err(format!(
                    "{kind}: send the absolute `file`; the daemon finds its workspace and path"
                )))
            }
            "workspace" if has_cwd(kind) => {
                return Err(err(format!(
                    "{kind}: send the absolute `cwd`; the daemon finds its workspace"
                )))
            }
            name => {
                let idx = kind
                    .field_index(name)
                    .ok_or_else(|| err(format!("{kind} has no field `{name}`")))?;
                let decl = &kind.fields()[idx];
                if v.is_null() && decl.optional {
                    continue;
                }
                let value = to_value(kind, name, decl.ty, v)?;
                if let Value::Int(i) = value {
                    if i < 0 && name != "exit" {
                        return Err(err(format!("{kind}.{name} must not be negative")));
                    }
                }
                if let Value::Str(s) = &value {
                    if kind == Kind::EditorCommand && name == "command" && !command_name(s) {
                        return Err(err(
                            "editor.command.command must be a command name, without arguments \
                             (letters, digits and . _ : -, at most 128)",
                        ));
                    }
                }
                msg.event.set(name, value).map_err(|e| err(e.to_string()))?;
            }
        }
    }
    if names_a_file(kind) && msg.file.is_none() && !file_optional(kind) {
        return Err(err(format!("{kind}.file is required (an absolute path)")));
    }
    if has_cwd(kind) && msg.cwd.is_none() && !closes_a_command(&msg) {
        return Err(err(format!("{kind}.cwd is required (an absolute path)")));
    }
    // Required fields the daemon does not fill in must be present, except
    // in a message closing a shell command (it carries only the outcome).
    if !closes_a_command(&msg) {
        for (decl, v) in kind.fields().iter().zip(msg.event.values()) {
            let filled = matches!(decl.name, "workspace" | "path" | "cwd");
            if !decl.optional && v.is_none() && !filled {
                return Err(err(format!("{kind}.{} is required", decl.name)));
            }
        }
    }
    if closes_a_command(&msg) && msg.event.get("exit").is_none() {
        return Err(err(
            "a shell.command without `command` closes an open one and needs `exit`",
        ));
    }
    Ok(msg)
}

/// An editor command's name or id (`w`, `Telescope`,
/// `editor.action.formatDocument`, `rust-analyzer.run`): never arguments,
/// which can hold anything (`s/hunter2/x/`, `e ~/.ssh/id_rsa`).
fn command_name(s: &str) -> bool {
    // Vim's one-character commands (`:!`, `:&`, `:<`, …) are names too.
    if s.len() == 1 && "!&~<>=@*#".contains(s) {
        return true;
    }
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
}

/// A `shell.command` message with an `id` and no `command`: the outcome
/// of a command opened earlier.
pub fn closes_a_command(msg: &Message) -> bool {
    msg.kind == Kind::ShellCommand && msg.id.is_some() && msg.event.get("command").is_none()
}

/// A reply line (with its newline).
pub fn reply(result: &Result<(), Refusal>) -> String {
    let v = match result {
        Ok(()) => serde_json::json!({ "ok": true }),
        Err(Refusal::Invalid(why)) => serde_json::json!({ "ok": false, "error": why }),
        Err(Refusal::NotRecorded { reason, detail }) => serde_json::json!({
            "ok": false,
            "not_recorded": reason,
            "error": format!("not recorded: {detail}"),
        }),
    };
    let mut s = v.to_string();
    s.push('\n');
    s
}

/// Why a message was not recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The message is wrong; the client should be fixed.
    Invalid(String),
    /// The message was fine, but may not be recorded now. `reason` is a
    /// short stable token (`paused`, `not-granted`, `outside`, `denied`,
    /// `ignored`, `hard-link`, `rate-limited`, `overloaded`); `detail` says it
    /// in words.
    NotRecorded {
        reason: &'static str,
        detail: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_764_340_000_000.0;

    fn p(s: &str) -> Result<Message, String> {
        parse(s.as_bytes(), NOW)
    }

    #[test]
    fn a_valid_edit_parses_with_its_file() {
        let m = p(r#"{"v":1,"kind":"editor.edit","ts":1764340000000,"file":"/w/a.rs","offset":3,"deleted":1,"text":"é","editor":"nvim"}"#).unwrap();
        assert_eq!(m.kind, Kind::EditorEdit);
        assert_eq!(m.file.as_deref(), Some(Path::new("/w/a.rs")));
        assert_eq!(m.event.get("text"), Some(&Value::from("é")));
        assert_eq!(m.event.get("offset"), Some(&Value::Int(3)));
    }

    #[test]
    fn problems_are_named() {
        let cases = [
            ("garbage", "not JSON"),
            ("[1,2]", "JSON object"),
            (r#"{"kind":"editor.focus"}"#, "`v` is missing"),
            (r#"{"v":2,"kind":"editor.focus"}"#, "version 2"),
            (
                r#"{"v":1,"kind":"editor.teleport","ts":1764340000000}"#,
                "unknown kind",
            ),
            (
                r#"{"v":1,"kind":"key.down","ts":1764340000000}"#,
                "cannot be sent",
            ),
            (
                r#"{"v":1,"kind":"capture.gap","ts":1764340000000}"#,
                "cannot be sent",
            ),
            (r#"{"v":1,"kind":"editor.focus"}"#, "`ts` is missing"),
            (
                r#"{"v":1,"kind":"editor.focus","ts":"now"}"#,
                "must be a number",
            ),
            (
                r#"{"v":1,"kind":"editor.focus","ts":1000}"#,
                "away from the daemon's clock",
            ),
            (
                r#"{"v":1,"kind":"editor.focus","ts":1764340000000}"#,
                "editor.focus.file is required",
            ),
            (
                r#"{"v":1,"kind":"editor.focus","ts":1764340000000,"file":"rel/a.rs"}"#,
                "absolute",
            ),
            (
                r#"{"v":1,"kind":"editor.focus","ts":1764340000000,"file":"/w/../etc/x"}"#,
                "`..`",
            ),
            (
                r#"{"v":1,"kind":"editor.focus","ts":1764340000000,"file":"/w/a","path":"a"}"#,
                "send the absolute `file`",
            ),
            (
                r#"{"v":1,"kind":"editor.focus","ts":1764340000000,"file":"/w/a","colour":1}"#,
                "no field `colour`",
            ),
            (
                r#"{"v":1,"kind":"editor.cursor","ts":1764340000000,"file":"/w/a","line":"3","col":1}"#,
                "editor.cursor.line must be an integer",
            ),
            (
                r#"{"v":1,"kind":"editor.cursor","ts":1764340000000,"file":"/w/a","line":1.5,"col":1}"#,
                "must be an integer",
            ),
            (
                r#"{"v":1,"kind":"editor.cursor","ts":1764340000000,"file":"/w/a","line":-1,"col":1}"#,
                "negative",
            ),
            (
                r#"{"v":1,"kind":"editor.cursor","ts":1764340000000,"file":"/w/a","line":1}"#,
                "editor.cursor.col is required",
            ),
            (
                r#"{"v":1,"kind":"run.test","ts":1764340000000,"cwd":"/w","command":"cargo test","exit":0,"duration_ms":5,"runner":"maven"}"#,
                "one of cargo",
            ),
            (
                r#"{"v":1,"kind":"editor.command","ts":1764340000000,"command":"s/secret/x/g extra"}"#,
                "without arguments",
            ),
            (
                r#"{"v":1,"kind":"shell.command","ts":1764340000000,"id":"a:1","duration_ms":3}"#,
                "needs `exit`",
            ),
            (
                r#"{"v":1,"kind":"shell.command","ts":1764340000000,"command":"ls"}"#,
                "cwd is required",
            ),
        ];
        for (line, want) in cases {
            let got = p(line)
                .err()
                .unwrap_or_else(|| panic!("{line} was accepted"));
            assert!(got.contains(want), "{line}: {got} (wanted {want})");
        }
        assert!(parse(b"\xff\xfe", NOW).unwrap_err().contains("UTF-8"));
        let deep = format!(
            r#"{{"v":1,"kind":"editor.focus","ts":1764340000000,"file":"/w{}"}}"#,
            "/a".repeat(300)
        );
        assert!(p(&deep).unwrap_err().contains("levels"));
        assert!(command_name("editor.action.formatDocument") && command_name("w"));
        assert!(command_name("!") && !command_name("!ls"));
        assert!(!command_name("") && !command_name("%s/a/b/") && !command_name("e ~/x"));
    }

    #[test]
    fn a_shell_command_opens_and_closes_by_id() {
        let open = p(r#"{"v":1,"kind":"shell.command","ts":1764340000000,"id":"s:1","command":"ls -l","cwd":"/w","shell":"bash"}"#).unwrap();
        assert!(!closes_a_command(&open));
        let close = p(r#"{"v":1,"kind":"shell.command","ts":1764340000000,"id":"s:1","exit":2,"duration_ms":40}"#).unwrap();
        assert!(closes_a_command(&close));
        assert_eq!(close.event.get("exit"), Some(&Value::Int(2)));
    }

    /// docs/ingest.md's table of kinds names every kind clients may send
    /// and all of its fields, and no other kind.
    #[test]
    fn the_protocol_document_matches_the_registry() {
        let doc = include_str!("../../../docs/ingest.md");
        let table = doc
            .split("### Kinds clients may send")
            .nth(1)
            .and_then(|t| t.split("\n\n").nth(1))
            .expect("the table of kinds");
        for kind in Kind::ALL {
            let row = table.lines().find(|l| {
                l.split('|')
                    .nth(1)
                    .is_some_and(|c| c.contains(&format!("`{kind}`")))
            });
            match (kind.decl().ingest, row) {
                (true, Some(row)) => {
                    for f in kind.fields() {
                        if !matches!(f.name, "workspace" | "path" | "cwd") {
                            assert!(
                                row.contains(&format!("`{}`", f.name)),
                                "{kind}.{} is not documented",
                                f.name
                            );
                        }
                    }
                    assert!(
                        row.contains(&format!("`{}`", kind.scope())),
                        "{kind}'s scope"
                    );
                }
                (true, None) => panic!("{kind} is missing from docs/ingest.md"),
                (false, Some(_)) => panic!("{kind} is documented as sendable"),
                (false, None) => {}
            }
        }
    }

    #[test]
    fn replies_are_one_json_line() {
        assert_eq!(reply(&Ok(())), "{\"ok\":true}\n");
        let r = reply(&Err(Refusal::NotRecorded {
            reason: "paused",
            detail: "capture is paused".into(),
        }));
        let v: Json = serde_json::from_str(r.trim_end()).unwrap();
        assert_eq!(v["not_recorded"], "paused");
        assert_eq!(v["error"], "not recorded: capture is paused");
    }
}
