//! The consent notice: CONSENT.md, compiled into the binary.
//!
//! Its version is the SHA-256 of those exact bytes, so `sha256sum CONSENT.md`
//! in the repository gives the hash a scripted grant must name. Its section
//! "What each choice records" has one `### scope` heading per registry scope;
//! tests hold the two together so the notice and the code cannot drift.

use sha2::{Digest, Sha256};

/// The notice text this binary was built with.
pub const NOTICE: &str = include_str!("../../CONSENT.md");

/// SHA-256 hex of [`NOTICE`]: the notice version.
pub fn notice_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hex::encode(Sha256::digest(NOTICE.as_bytes())))
        .clone()
}

/// The scope sections of the notice: (heading, body) for every `### `
/// heading, in order.
pub fn scope_sections() -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for line in NOTICE.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            out.push((h.trim(), String::new()));
        } else if line.starts_with("## ") {
            if let Some(last) = out.last_mut() {
                if !last.1.is_empty() {
                    // A new top-level section ends the scope list.
                    break;
                }
            }
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Scope, Sensitivity};

    #[test]
    fn every_scope_is_described_with_its_retention() {
        let sections = scope_sections();
        for scope in Scope::ALL {
            let (_, body) = sections
                .iter()
                .find(|(h, _)| *h == scope.name())
                .unwrap_or_else(|| panic!("CONSENT.md does not describe {scope}"));
            let flat = body.split_whitespace().collect::<Vec<_>>().join(" ");
            let days = format!("{} days", scope.retention_days());
            assert!(
                flat.contains(&days),
                "{scope}: the notice does not say `{days}`: {flat}"
            );
            if scope.sensitivity() == Sensitivity::HighlySensitive {
                assert!(
                    flat.contains("Sealed"),
                    "{scope}: the notice does not say it is sealed"
                );
            }
            if !scope.decl().toggleable {
                assert!(
                    flat.contains("Always on"),
                    "{scope} is always on; the notice must say so"
                );
            }
        }
        for (heading, _) in &sections {
            assert!(
                Scope::from_name(heading).is_some(),
                "CONSENT.md describes `{heading}`, which is not a scope"
            );
        }
        assert_eq!(sections.len(), Scope::ALL.len());
    }

    #[test]
    fn the_hash_is_the_sha256_of_the_file() {
        let on_disk = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/CONSENT.md")).unwrap();
        assert_eq!(notice_hash(), hex::encode(Sha256::digest(&on_disk)));
        assert_eq!(notice_hash().len(), 64);
    }
}
