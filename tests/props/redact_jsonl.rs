//! `candor-export redact --jsonl` (`redact::jsonl::redact_jsonl`): any input
//! gives output or an error naming its line, never a panic; a document of
//! N objects gives N lines, each valid JSON with every other field kept as
//! it was; planted tokens never survive, and plain prose is kept byte for
//! byte with no findings; a bad line anywhere is refused by its number.

use std::sync::LazyLock;

use candor::redact::jsonl::redact_jsonl;
use candor::redact::{Identity, Placeholders, Redactor};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value as Json};

const REGRESSIONS: &str = "proptest-regressions/redact_jsonl.txt";

static REDACTOR: LazyLock<Redactor> =
    LazyLock::new(|| Redactor::new(&Identity::none()).expect("the rule table compiles"));

/// The lines of a JSONL document as `redact_jsonl` counts them: split on
/// newlines, a final newline ending the last line rather than starting one.
fn line_count(doc: &[u8]) -> usize {
    let n = doc.split(|&b| b == b'\n').count();
    if doc.ends_with(b"\n") || doc.is_empty() {
        n - 1
    } else {
        n
    }
}

/// What a line's `text` holds, and the token planted in it (if any).
#[derive(Clone, Debug)]
struct Text {
    text: String,
    before: String,
    after: String,
    secret: Option<String>,
}

fn text() -> impl Strategy<Value = Text> {
    let plain = crate::plain_words().prop_map(|t| Text {
        text: t.clone(),
        before: t,
        after: String::new(),
        secret: None,
    });
    let planted = (
        crate::plain_words(),
        crate::planted_secret(),
        select(vec![" {} ", "\n{}\n", " token={} ", " \"{}\" ", "\t{}\r\n"]),
        crate::plain_words(),
    )
        .prop_map(|(before, secret, ctx, after)| {
            let middle = ctx.replace("{}", &secret);
            Text {
                text: format!("{before}{middle}{after}"),
                before,
                after,
                secret: Some(secret),
            }
        });
    prop_oneof![plain, planted]
}

/// An object with a `text` and other fields of any JSON.
fn object() -> impl Strategy<Value = (Map<String, Json>, Text)> {
    (
        text(),
        prop::collection::btree_map(
            ".{0,8}".prop_filter("not ours", |k| k != "text" && k != "findings"),
            crate::json_value(),
            0..4,
        ),
    )
        .prop_map(|(t, extra)| {
            let mut obj: Map<String, Json> = extra.into_iter().collect();
            obj.insert("text".into(), Json::String(t.text.clone()));
            (obj, t)
        })
}

/// Joins lines with `\n` or `\r\n`, with or without a final newline.
fn document(lines: &[Vec<u8>], crlf: bool, final_newline: bool) -> Vec<u8> {
    let sep: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let mut doc = lines.join(sep);
    if final_newline {
        doc.extend_from_slice(sep);
    }
    doc
}

fn run(doc: &[u8]) -> Result<Vec<u8>, String> {
    let mut book = Placeholders::new();
    redact_jsonl(&REDACTOR, doc, &mut book).map_err(|e| e.to_string())
}

/// A line the mode must refuse, and why.
fn bad_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(b"   ".to_vec()),
        "[^\\n{]{1,20}".prop_map(String::into_bytes),
        crate::json_value()
            .prop_filter("not an object", |v| !v.is_object())
            .prop_map(|v| v.to_string().into_bytes()),
        prop::collection::btree_map("[a-z]{1,6}", crate::json_value(), 0..4).prop_map(|m| {
            let mut m: Map<String, Json> = m.into_iter().collect();
            m.remove("text");
            serde_json::to_vec(&m).unwrap_or_default()
        }),
        crate::json_value()
            .prop_filter("not a string", |v| !v.is_string())
            .prop_map(|v| serde_json::to_vec(&serde_json::json!({ "text": v })).unwrap_or_default()),
        Just(b"{\"text\":\"caf\xe9\"}".to_vec()),
        Just(b"{\"text\":\"ok\"} trailing".to_vec()),
    ]
}

proptest! {
    #![proptest_config(crate::config(400, REGRESSIONS))]

    /// Any bytes: no panic; an answer is one valid object line per line in.
    #[test]
    fn any_input_gives_lines_or_a_named_error(
        doc in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            prop::collection::vec(
                prop_oneof![
                    "[\\s\\S]{0,30}".prop_map(String::into_bytes),
                    object().prop_map(|(o, _)| serde_json::to_vec(&o).unwrap_or_default()),
                ],
                0..5,
            )
            .prop_map(|lines| lines.join(&b'\n')),
        ],
    ) {
        match run(&doc) {
            Ok(out) => {
                prop_assert_eq!(line_count(&out), line_count(&doc));
                prop_assert!(out.is_empty() || out.ends_with(b"\n"));
                for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    let v: Json = serde_json::from_slice(line)
                        .map_err(|e| TestCaseError::fail(format!("output line is not JSON: {e}")))?;
                    prop_assert!(v.is_object());
                }
            }
            Err(e) => prop_assert!(e.starts_with("line "), "{}", e),
        }
    }

}

proptest! {
    #![proptest_config(crate::config(150, REGRESSIONS))]

    /// N objects in, N objects out, in order: other fields as they were,
    /// planted tokens gone, plain prose untouched.
    #[test]
    fn objects_keep_their_fields_and_lose_their_secrets(
        objects in prop::collection::vec(object(), 1..6),
        crlf in any::<bool>(),
        final_newline in any::<bool>(),
    ) {
        let lines: Vec<Vec<u8>> = objects
            .iter()
            .map(|(o, _)| serde_json::to_vec(o).unwrap_or_default())
            .collect();
        let doc = document(&lines, crlf, final_newline);
        let out = run(&doc).map_err(TestCaseError::fail)?;
        let out_lines: Vec<&[u8]> = out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
        prop_assert_eq!(out_lines.len(), objects.len());
        prop_assert!(out.ends_with(b"\n"));
        for ((input, t), line) in objects.iter().zip(&out_lines) {
            let got: Map<String, Json> = serde_json::from_slice(line)
                .map_err(|e| TestCaseError::fail(format!("output line is not an object: {e}")))?;
            let sent: Map<String, Json> = serde_json::from_slice(&serde_json::to_vec(input).unwrap_or_default())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            for (k, v) in &sent {
                if k != "text" {
                    prop_assert_eq!(got.get(k), Some(v), "field {:?} changed", k);
                }
            }
            prop_assert_eq!(got.len(), sent.len() + 1, "only `findings` is added");
            let redacted = got["text"].as_str().unwrap_or_default();
            let findings = got["findings"].as_array().cloned().unwrap_or_default();
            let mut end = 0;
            for f in &findings {
                let (s, e) = (f["start"].as_u64().unwrap_or(0) as usize, f["end"].as_u64().unwrap_or(0) as usize);
                prop_assert!(end <= s && s < e && e <= t.text.len(), "findings out of order or range: {:?}", findings);
                prop_assert!(t.text.is_char_boundary(s) && t.text.is_char_boundary(e));
                end = e;
            }
            match &t.secret {
                None => {
                    prop_assert_eq!(redacted, t.text.as_str());
                    prop_assert!(findings.is_empty(), "{:?} in plain prose", findings);
                }
                Some(secret) => {
                    prop_assert!(!redacted.contains(secret.as_str()), "{} survived in {:?}", secret, redacted);
                    prop_assert!(redacted.starts_with(&t.before), "{:?}", redacted);
                    prop_assert!(redacted.ends_with(&t.after), "{:?}", redacted);
                }
            }
        }
    }

}

proptest! {
    #![proptest_config(crate::config(150, REGRESSIONS))]

    /// One bad line among good ones: no output at all, and the error names
    /// that line.
    #[test]
    fn a_bad_line_is_refused_by_its_number(
        objects in prop::collection::vec(object(), 0..5),
        bad in bad_line(),
        at in any::<prop::sample::Index>(),
        crlf in any::<bool>(),
    ) {
        let mut lines: Vec<Vec<u8>> = objects
            .iter()
            .map(|(o, _)| serde_json::to_vec(o).unwrap_or_default())
            .collect();
        let at = at.index(lines.len() + 1);
        lines.insert(at, bad.clone());
        // A final newline, so that a blank last line is a line.
        let doc = document(&lines, crlf, true);
        match run(&doc) {
            Ok(_) => return Err(TestCaseError::fail(format!(
                "accepted {:?} as line {}", String::from_utf8_lossy(&bad), at + 1))),
            Err(e) => prop_assert!(e.starts_with(&format!("line {}:", at + 1)), "{}", e),
        }
    }
}

proptest! {
    #![proptest_config(crate::config(300, REGRESSIONS))]

    /// The engine under every line: a token between any two runs of prose,
    /// in any of the usual settings, is found whole and replaced.
    #[test]
    fn a_planted_token_is_found_in_any_prose(t in text()) {
        let r = REDACTOR.redact(&t.text, &mut Placeholders::new());
        if let Some(secret) = &t.secret {
            let at = t.text.find(secret.as_str()).unwrap_or(0);
            prop_assert!(
                r.findings.iter().any(|f| f.start <= at && at + secret.len() <= f.end),
                "{} not found whole in {:?}: {:?}", secret, t.text, r.findings
            );
            prop_assert!(!r.text.contains(secret.as_str()));
        } else {
            prop_assert_eq!(&r.text, &t.text);
        }
    }
}
