//! The ingest protocol parser (`capture::ingest::protocol::parse`), which
//! reads lines from any local process: whatever the bytes, it answers with
//! a message or a named error, and the reply is one JSON line; messages
//! built from the registry's declarations are accepted with every field as
//! sent; each kind of mutation of such a message is refused with an error
//! naming what is wrong.

use candor::capture::ingest::protocol::{
    self, closes_a_command, has_cwd, names_a_file, parse, Refusal, MAX_SKEW_MS,
};
use candor::event::Value;
use candor::registry::{FieldType, Kind};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value as Json};

const REGRESSIONS: &str = "proptest-regressions/protocol.txt";
const NOW: f64 = 1_764_340_000_000.0;

fn sendable() -> Vec<Kind> {
    Kind::ALL
        .iter()
        .copied()
        .filter(|k| k.decl().ingest)
        .collect()
}

/// Fields the daemon fills in itself: never sent under their own name.
fn filled_by_daemon(name: &str) -> bool {
    matches!(name, "workspace" | "path" | "cwd")
}

/// The reply a daemon would write for this line: one line, a JSON object,
/// `ok` true, or false with a non-empty `error`.
fn check_reply(result: &Result<protocol::Message, String>) -> Result<(), TestCaseError> {
    let r = match result {
        Ok(_) => Ok(()),
        Err(why) => Err(Refusal::Invalid(why.clone())),
    };
    let line = protocol::reply(&r);
    prop_assert!(line.ends_with('\n'));
    prop_assert_eq!(line.matches('\n').count(), 1, "one line: {:?}", line);
    let v: Json = serde_json::from_str(line.trim_end())
        .map_err(|e| TestCaseError::fail(format!("reply is not JSON: {e}: {line}")))?;
    match result {
        Ok(_) => prop_assert_eq!(v, json!({"ok": true})),
        Err(why) => {
            prop_assert!(!why.trim().is_empty(), "an error must say something");
            prop_assert_eq!(&v["ok"], &json!(false));
            prop_assert_eq!(v["error"].as_str(), Some(why.as_str()));
        }
    }
    Ok(())
}

/// An absolute path without `..`, a few levels deep, with any characters a
/// file name may hold (not `/` or NUL).
fn abs_path() -> impl Strategy<Value = String> {
    prop::collection::vec("[^/\\x00]{1,12}", 1..8)
        .prop_filter("no `..`", |segs| segs.iter().all(|s| s != ".."))
        .prop_map(|segs| format!("/{}", segs.join("/")))
}

/// A value of the declared type, as JSON and as the event holds it.
fn field_value(kind: Kind, name: &'static str, ty: FieldType) -> BoxedStrategy<(Json, Value)> {
    match ty {
        FieldType::Int if name == "exit" => {
            any::<i64>().prop_map(|i| (json!(i), Value::Int(i))).boxed()
        }
        FieldType::Int => (0..=i64::MAX)
            .prop_map(|i| (json!(i), Value::Int(i)))
            .boxed(),
        FieldType::Bool => any::<bool>()
            .prop_map(|b| (json!(b), Value::Bool(b)))
            .boxed(),
        FieldType::Enum(allowed) => select(allowed.to_vec())
            .prop_map(|s| (json!(s), Value::from(s)))
            .boxed(),
        FieldType::Str if kind == Kind::EditorCommand && name == "command" => prop_oneof![
            "[A-Za-z_][A-Za-z0-9._:-]{0,40}",
            select(vec!["!", "&", "~", "<", ">", "=", "@", "*", "#"]).prop_map(String::from),
        ]
        .prop_map(|s| (json!(s), Value::from(s)))
        .boxed(),
        FieldType::Str => ".{0,40}".prop_map(|s| (json!(s), Value::from(s))).boxed(),
        FieldType::Blob => panic!("{kind}.{name}: blob fields cannot be sent as JSON"),
    }
}

/// A field as sent: its name, its JSON, and the value the event must hold.
type Sent = (&'static str, Json, Value);

/// A valid message of `kind`: the JSON object, and what the parser must
/// give back (field values, file, cwd).
#[derive(Clone, Debug)]
struct Valid {
    kind: Kind,
    obj: Map<String, Json>,
    fields: Vec<(&'static str, Value)>,
    file: Option<String>,
    cwd: Option<String>,
    id: Option<String>,
}

fn valid_message_of(kind: Kind) -> BoxedStrategy<Valid> {
    let mut parts: Vec<BoxedStrategy<Option<Sent>>> = Vec::new();
    for decl in kind.fields() {
        if filled_by_daemon(decl.name) || decl.ty == FieldType::Blob {
            continue;
        }
        let name = decl.name;
        let value = field_value(kind, name, decl.ty);
        let s = if decl.optional {
            prop::option::of(value)
                .prop_map(move |v| v.map(|(j, e)| (name, j, e)))
                .boxed()
        } else {
            value.prop_map(move |(j, e)| Some((name, j, e))).boxed()
        };
        parts.push(s);
    }
    let file_required = names_a_file(kind)
        && !kind
            .field_index("path")
            .is_some_and(|i| kind.fields()[i].optional);
    let file = if names_a_file(kind) {
        if file_required {
            abs_path().prop_map(Some).boxed()
        } else {
            prop::option::of(abs_path()).boxed()
        }
    } else {
        Just(None).boxed()
    };
    let cwd = if has_cwd(kind) {
        abs_path().prop_map(Some).boxed()
    } else {
        Just(None).boxed()
    };
    let id = if kind == Kind::ShellCommand {
        prop::option::of("[a-z0-9:]{1,40}").boxed()
    } else {
        Just(None).boxed()
    };
    let skew = -(MAX_SKEW_MS as i64 - 1)..(MAX_SKEW_MS as i64);
    (parts, file, cwd, id, skew)
        .prop_map(move |(parts, file, cwd, id, skew)| {
            let mut obj = Map::new();
            obj.insert("v".into(), json!(1));
            obj.insert("kind".into(), json!(kind.name()));
            obj.insert("ts".into(), json!(NOW as i64 + skew));
            let mut fields = Vec::new();
            for (name, j, e) in parts.into_iter().flatten() {
                obj.insert(name.into(), j);
                fields.push((name, e));
            }
            if let Some(f) = &file {
                obj.insert("file".into(), json!(f));
            }
            if let Some(c) = &cwd {
                obj.insert("cwd".into(), json!(c));
            }
            if let Some(i) = &id {
                obj.insert("id".into(), json!(i));
            }
            Valid {
                kind,
                obj,
                fields,
                file,
                cwd,
                id,
            }
        })
        .boxed()
}

fn valid_message() -> impl Strategy<Value = Valid> {
    let strategies: Vec<BoxedStrategy<Valid>> =
        sendable().into_iter().map(valid_message_of).collect();
    prop::strategy::Union::new(strategies)
}

fn line_of(obj: &Map<String, Json>) -> Vec<u8> {
    serde_json::to_vec(obj).expect("a map always serializes")
}

/// A change that makes a valid message invalid, and a word the error must
/// contain.
#[derive(Clone, Debug)]
enum Mutation {
    /// Remove a key the message needs.
    Drop(usize),
    /// Add a key the kind does not declare.
    Unknown(String),
    /// Give a declared field a value of another type.
    WrongType(usize, Json),
    /// A protocol version other than 1.
    Version(Json),
    /// A `ts` more than a minute away, or not a number.
    Skew(Json),
    /// A `file` or `cwd` that is relative, or climbs with `..`.
    BadPath(String),
    /// `workspace` or `path` set by the client.
    Forge(&'static str),
    /// A kind the daemon records itself.
    DaemonKind(usize),
    /// A negative value for a count.
    Negative(usize, i64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let wrong = prop_oneof![
        Just(json!("3")),
        Just(json!(1.5)),
        Just(json!(true)),
        Just(json!([])),
        Just(json!({})),
        Just(json!(-0.25)),
        Just(json!(18_446_744_073_709_551_615u64)),
        "[a-z]{0,6}".prop_map(|s| json!(format!("zz-{s}"))),
    ];
    prop_oneof![
        any::<prop::sample::Index>().prop_map(|i| Mutation::Drop(i.index(usize::MAX))),
        "[a-z_]{1,12}".prop_map(Mutation::Unknown),
        (any::<prop::sample::Index>(), wrong)
            .prop_map(|(i, v)| Mutation::WrongType(i.index(usize::MAX), v)),
        prop_oneof![
            (2i64..1000).prop_map(|v| json!(v)),
            (i64::MIN..1).prop_map(|v| json!(v)),
            Just(json!("1")),
            Just(json!(1.5)),
            Just(json!(null)),
        ]
        .prop_map(Mutation::Version),
        prop_oneof![
            (MAX_SKEW_MS as i64 + 1..i64::MAX / 2).prop_map(|d| json!(NOW as i64 + d)),
            (MAX_SKEW_MS as i64 + 1..i64::MAX / 2).prop_map(|d| json!(NOW as i64 - d)),
            Just(json!("now")),
            Just(json!(null)),
            Just(json!(1e308)),
        ]
        .prop_map(Mutation::Skew),
        prop_oneof![
            "[a-z]{1,8}(/[a-z]{1,8}){0,3}",
            "/[a-z]{1,8}/\\.\\./[a-z]{1,8}",
            "/\\.\\.",
        ]
        .prop_map(Mutation::BadPath),
        select(vec!["workspace", "path"]).prop_map(Mutation::Forge),
        any::<prop::sample::Index>().prop_map(|i| Mutation::DaemonKind(i.index(usize::MAX))),
        (any::<prop::sample::Index>(), i64::MIN..0)
            .prop_map(|(i, n)| Mutation::Negative(i.index(usize::MAX), n)),
    ]
}

/// Applies `m` to `v`; `None` when the mutation does not apply to this kind
/// (no field of the right sort). Returns the line and the words the error
/// must contain (any one of them).
fn mutate(v: &Valid, m: &Mutation) -> Option<(Vec<u8>, Vec<String>)> {
    let kind = v.kind;
    let mut obj = v.obj.clone();
    let pick = |n: usize, list: &[String]| list.get(n % list.len().max(1)).cloned();
    let want: Vec<String> = match m {
        Mutation::Drop(n) => {
            // What a message of this kind cannot do without. Dropping the
            // `command` of a shell.command with an `id` makes it a valid
            // closing message, so it is not a mutation.
            let mut required: Vec<String> = vec!["v".into(), "kind".into(), "ts".into()];
            for d in kind.fields() {
                let closes = kind == Kind::ShellCommand && d.name == "command" && v.id.is_some();
                if !(d.optional || filled_by_daemon(d.name) || closes) {
                    required.push(d.name.into());
                }
            }
            if v.file.is_some()
                && !kind
                    .field_index("path")
                    .is_some_and(|i| kind.fields()[i].optional)
            {
                required.push("file".into());
            }
            if v.cwd.is_some() {
                required.push("cwd".into());
            }
            let key = pick(*n, &required)?;
            obj.remove(&key);
            vec![format!("`{key}`"), format!("{kind}.{key}")]
        }
        Mutation::Unknown(name) => {
            let taken = ["v", "kind", "ts", "id", "file", "cwd", "workspace", "path"];
            if kind.field_index(name).is_some() || taken.contains(&name.as_str()) {
                return None;
            }
            obj.insert(name.clone(), json!(1));
            vec![format!("`{name}`")]
        }
        Mutation::WrongType(n, bad) => {
            let present: Vec<String> = v.fields.iter().map(|(n, _)| (*n).to_owned()).collect();
            let key = pick(*n, &present)?;
            let decl = &kind.fields()[kind.field_index(&key)?];
            let fits = match (decl.ty, bad) {
                (FieldType::Int, Json::Number(x)) => x.as_i64().is_some(),
                (FieldType::Str, Json::String(_)) => true,
                (FieldType::Bool, Json::Bool(_)) => true,
                (FieldType::Enum(allowed), Json::String(s)) => allowed.contains(&s.as_str()),
                _ => false,
            };
            if fits {
                return None;
            }
            obj.insert(key.clone(), bad.clone());
            vec![format!("{kind}.{key}")]
        }
        Mutation::Version(bad) => {
            obj.insert("v".into(), bad.clone());
            vec!["version".into()]
        }
        Mutation::Skew(bad) => {
            obj.insert("ts".into(), bad.clone());
            vec!["`ts`".into()]
        }
        Mutation::BadPath(p) => {
            let key = if v.file.is_some() {
                "file"
            } else if v.cwd.is_some() {
                "cwd"
            } else {
                return None;
            };
            obj.insert(key.into(), json!(p));
            vec![format!("{kind}.{key}")]
        }
        Mutation::Forge(key) => {
            kind.field_index(key)?;
            obj.insert((*key).into(), json!("x"));
            vec!["send the absolute".into()]
        }
        Mutation::DaemonKind(n) => {
            let daemon: Vec<String> = Kind::ALL
                .iter()
                .filter(|k| !k.decl().ingest)
                .map(|k| k.name().to_owned())
                .collect();
            let name = pick(*n, &daemon)?;
            obj.insert("kind".into(), json!(name));
            vec!["cannot be sent".into()]
        }
        Mutation::Negative(n, neg) => {
            let counts: Vec<String> = v
                .fields
                .iter()
                .filter(|(name, val)| matches!(val, Value::Int(_)) && *name != "exit")
                .map(|(name, _)| (*name).to_owned())
                .collect();
            let key = pick(*n, &counts)?;
            obj.insert(key.clone(), json!(neg));
            vec![format!("{kind}.{key}")]
        }
    };
    Some((line_of(&obj), want))
}

proptest! {
    #![proptest_config(crate::config(1000, REGRESSIONS))]

    /// Any bytes at all: no panic, and the reply is one JSON line.
    #[test]
    fn any_bytes_get_a_reply(line in prop::collection::vec(any::<u8>(), 0..256)) {
        let r = parse(&line, NOW);
        check_reply(&r)?;
    }

}

proptest! {
    #![proptest_config(crate::config(300, REGRESSIONS))]

    /// Any JSON value, and any object with the protocol's keys among
    /// arbitrary ones: no panic, and the reply is one JSON line.
    #[test]
    fn any_json_gets_a_reply(
        value in crate::json_value(),
        kind in prop_oneof![
            select(Kind::ALL.to_vec()).prop_map(|k| json!(k.name())),
            crate::json_value(),
        ],
        extra in prop::collection::btree_map(
            prop_oneof![
                select(vec!["v", "ts", "file", "cwd", "id", "workspace", "path", "exit",
                            "command", "text", "offset", "line"]).prop_map(String::from),
                "[a-z_]{1,8}",
            ],
            crate::json_value(),
            0..6,
        ),
    ) {
        check_reply(&parse(value.to_string().as_bytes(), NOW))?;
        let mut obj: Map<String, Json> = extra.into_iter().collect();
        obj.insert("v".into(), json!(1));
        obj.insert("ts".into(), json!(NOW as i64));
        obj.insert("kind".into(), kind);
        check_reply(&parse(&line_of(&obj), NOW))?;
    }

}

proptest! {
    #![proptest_config(crate::config(300, REGRESSIONS))]

    /// A message built from the registry's declaration is accepted, and
    /// the parsed message holds exactly what was sent.
    #[test]
    fn valid_messages_are_accepted_as_sent(v in valid_message()) {
        let line = line_of(&v.obj);
        let r = parse(&line, NOW);
        check_reply(&r)?;
        let msg = match r {
            Ok(m) => m,
            Err(e) => return Err(TestCaseError::fail(format!(
                "refused: {e}\n{}", String::from_utf8_lossy(&line)))),
        };
        prop_assert_eq!(msg.kind, v.kind);
        for (name, value) in &v.fields {
            prop_assert_eq!(msg.event.get(name), Some(value), "{}", name);
        }
        for decl in v.kind.fields() {
            if !v.fields.iter().any(|(n, _)| *n == decl.name) {
                prop_assert_eq!(msg.event.get(decl.name), None, "{} was not sent", decl.name);
            }
        }
        prop_assert_eq!(msg.file.as_ref().and_then(|p| p.to_str()), v.file.as_deref());
        prop_assert_eq!(msg.cwd.as_ref().and_then(|p| p.to_str()), v.cwd.as_deref());
        prop_assert_eq!(msg.id.as_deref(), v.id.as_deref());
        prop_assert!(!closes_a_command(&msg));
    }

}

proptest! {
    #![proptest_config(crate::config(500, REGRESSIONS))]

    /// Each mutation of a valid message is refused, and the error names
    /// what is wrong.
    #[test]
    fn mutated_messages_are_refused_by_name(v in valid_message(), m in mutation()) {
        // A mutation that does not apply to this kind is not a case.
        let applies = mutate(&v, &m);
        prop_assume!(applies.is_some());
        let Some((line, want)) = applies else {
            return Ok(());
        };
        let r = parse(&line, NOW);
        check_reply(&r)?;
        match r {
            Ok(_) => return Err(TestCaseError::fail(format!(
                "accepted after {m:?}: {}", String::from_utf8_lossy(&line)))),
            Err(e) => prop_assert!(
                want.iter().any(|w| e.contains(w.as_str())),
                "{:?}: error {:?} names none of {:?}", m, e, want
            ),
        }
    }
}
