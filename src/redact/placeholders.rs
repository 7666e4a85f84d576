//! The consistent-placeholder book: the same value always gets the same
//! placeholder (`<SECRET:github-pat#1>`, `<EMAIL#2>`) for as long as the book
//! lives, so a model still sees that two places share a value.
//!
//! The exporter keeps one book for a whole export run. The book never holds
//! a value: it is keyed by HMAC-SHA256 under a random key made when the book
//! is created and dropped with it, so neither the values nor a plain
//! (guessable) hash of them can leak from it, and placeholders of two runs
//! cannot be linked.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{Category, Finding};

pub struct Placeholders {
    key: Zeroizing<[u8; 32]>,
    by_value: HashMap<[u8; 32], String>,
    /// Next number per label.
    counters: HashMap<String, u32>,
}

impl std::fmt::Debug for Placeholders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placeholders")
            .field("values", &self.by_value.len())
            .finish_non_exhaustive()
    }
}

impl Default for Placeholders {
    fn default() -> Self {
        Placeholders::new()
    }
}

impl Placeholders {
    pub fn new() -> Placeholders {
        let mut key = Zeroizing::new([0u8; 32]);
        // The OS RNG only fails on a broken system; a fixed key would still
        // keep values out of the output, it would only make two runs'
        // placeholder numbering linkable, so fall back rather than panic.
        if getrandom::fill(key.as_mut()).is_err() {
            key.copy_from_slice(&[0x5a; 32]);
        }
        Placeholders {
            key,
            by_value: HashMap::new(),
            counters: HashMap::new(),
        }
    }

    /// The placeholder for `value` found by `finding`. Secrets share one
    /// namespace (the same token caught by two rules is one value); other
    /// families are numbered per label.
    pub fn placeholder(&mut self, finding: &Finding, value: &str) -> String {
        let label = finding.label();
        let class: &str = match finding.category {
            Category::Secret => "SECRET",
            _ => &label,
        };
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.key.as_ref()).expect("HMAC takes any key length");
        mac.update(class.as_bytes());
        mac.update(&[0]);
        // One person, one placeholder: `Jane Doe` and `jane.doe` are the
        // same name, `JDoe@Corp.io` and `jdoe@corp.io` the same address.
        match (finding.category, finding.rule) {
            (Category::Identity, _) => {
                let canon: String = value
                    .chars()
                    .filter(|c| c.is_alphanumeric())
                    .flat_map(char::to_lowercase)
                    .collect();
                mac.update(canon.as_bytes());
            }
            (_, "email") => mac.update(value.to_lowercase().as_bytes()),
            _ => mac.update(value.as_bytes()),
        }
        let tag: [u8; 32] = mac.finalize().into_bytes().into();
        if let Some(p) = self.by_value.get(&tag) {
            return p.clone();
        }
        let n = self.counters.entry(label.to_string()).or_insert(0);
        *n += 1;
        let p = format!("<{label}#{n}>");
        self.by_value.insert(tag, p.clone());
        p
    }

    /// How many distinct values the book has numbered.
    pub fn len(&self) -> usize {
        self.by_value.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_value.is_empty()
    }
}
