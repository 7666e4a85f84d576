//! The JSONL mode: each line a JSON object with a `"text"` field; each output
//! line the same object with `"text"` redacted and `"findings"` added.
//!
//! The whole input is checked and redacted into memory before anything is
//! returned, so a bad line anywhere means no output at all, never half a file.

use serde_json::{Map, Value};

use super::engine::Redactor;
use super::placeholders::Placeholders;
use super::RedactError;

/// Redacts a JSONL document: every line must be an object with a string
/// `"text"` (a blank line is an error too: it is not JSON). A final newline
/// is optional. Line numbers in errors count from 1.
pub fn redact_jsonl(
    redactor: &Redactor,
    input: &[u8],
    book: &mut Placeholders,
) -> Result<Vec<u8>, RedactError> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 8);
    let last = input.split(|&b| b == b'\n').count() - 1;
    for (n, raw) in input.split(|&b| b == b'\n').enumerate() {
        let line = n + 1;
        if raw.is_empty() && n == last {
            // The empty tail after the final newline is not a line. A lone
            // `\r` there is: it is refused like any blank line, not dropped.
            continue;
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let s = std::str::from_utf8(raw).map_err(|e| RedactError::LineNotUtf8 {
            line,
            offset: e.valid_up_to(),
        })?;
        let mut obj: Map<String, Value> = match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => m,
            Ok(other) => {
                return Err(RedactError::BadJson {
                    line,
                    reason: format!("found {}", kind_of(&other)),
                })
            }
            Err(e) => {
                return Err(RedactError::BadJson {
                    line,
                    reason: e.to_string(),
                })
            }
        };
        let text = match obj.get("text") {
            None => return Err(RedactError::MissingText { line }),
            Some(Value::String(t)) => t.clone(),
            Some(_) => return Err(RedactError::TextNotString { line }),
        };
        let r = redactor.redact(&text, book);
        let findings: Vec<Value> = r
            .findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "rule": f.rule,
                    "category": f.category.as_str(),
                    "start": f.start,
                    "end": f.end,
                })
            })
            .collect();
        obj.insert("text".into(), Value::String(r.text));
        obj.insert("findings".into(), Value::Array(findings));
        serde_json::to_writer(&mut out, &obj).map_err(|e| RedactError::BadJson {
            line,
            reason: e.to_string(),
        })?;
        out.push(b'\n');
    }
    Ok(out)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
