//! The key replay behind typed-text redaction (`redact::replay` and
//! `Redactor::redact_keys`): any sequence of key events replays without a
//! panic; every character of the reconstructed text maps back to a key
//! that typed it; every character a key typed is accounted for (still in
//! the text, or carried as a ghost of the character that took its place),
//! which is what lets a finding mask the typos inside a secret; and a
//! secret typed with corrections is masked key by key.

use std::sync::LazyLock;

use candor::redact::{replay, Identity, KeyStroke, Placeholders, Redactor};
use proptest::prelude::*;
use proptest::sample::select;

const REGRESSIONS: &str = "proptest-regressions/key_replay.txt";

static REDACTOR: LazyLock<Redactor> =
    LazyLock::new(|| Redactor::new(&Identity::none()).expect("the rule table compiles"));

const NAMED: &[&str] = &[
    "KeyA",
    "KeyZ",
    "Num1",
    "Space",
    "Return",
    "KpReturn",
    "Tab",
    "Backspace",
    "Delete",
    "LeftArrow",
    "RightArrow",
    "UpArrow",
    "DownArrow",
    "Home",
    "End",
    "ShiftLeft",
    "ControlLeft",
    "Escape",
    "Paste",
    "Unknown",
];

/// Keys that edit or move and never type.
const EDITING: &[&str] = &[
    "Backspace",
    "Delete",
    "LeftArrow",
    "RightArrow",
    "UpArrow",
    "DownArrow",
    "Home",
    "End",
];

/// Any key event: a known or made-up name, any text (a character, a
/// control character, a paste), any modifiers.
fn key_stroke() -> impl Strategy<Value = KeyStroke> {
    let key = prop_oneof![
        5 => select(NAMED.to_vec()).prop_map(String::from),
        1 => "[A-Za-z0-9]{1,10}",
    ];
    let text = prop::option::of(prop_oneof![
        6 => "[a-zA-Z0-9 ]",
        2 => select(vec!["\r", "\n", "\t", "\u{8}", "\u{7f}", "\u{1b}", "\u{3}"]).prop_map(String::from),
        2 => ".{0,20}",
        1 => "[\\s\\S]{0,8}",
    ]);
    let mods = prop_oneof![
        8 => Just(0i64),
        3 => Just(1i64),
        2 => select(vec![2i64, 4, 8, 3, 6, 15]),
        1 => any::<i64>(),
    ];
    (key, text, mods).prop_map(|(key, text, mods)| KeyStroke { key, text, mods })
}

/// What the key inserts, by the rules the replay documents: Return and Tab
/// their character, editing keys and chords (Ctrl, Alt, Meta held) nothing,
/// any other key its text without control characters (but newlines and
/// tabs).
fn types(k: &KeyStroke) -> Vec<char> {
    let chord = k.mods & (2 | 4 | 8) != 0;
    match k.key.as_str() {
        "Return" | "KpReturn" if !chord => vec!['\n'],
        "Tab" if !chord => vec!['\t'],
        _ if chord || EDITING.contains(&k.key.as_str()) => vec![],
        _ => k
            .text
            .as_deref()
            .unwrap_or("")
            .chars()
            .filter(|c| *c == '\n' || *c == '\t' || !c.is_control())
            .collect(),
    }
}

fn is_subsequence(part: &[char], of: &[char]) -> bool {
    let mut it = of.iter();
    part.iter().all(|c| it.any(|o| o == c))
}

/// Safe words typed key by key, with a wrong letter fixed by Backspace now
/// and then.
fn typed_with_typos(s: &str, typos: &[bool]) -> Vec<KeyStroke> {
    let mut keys = Vec::new();
    for (i, c) in s.chars().enumerate() {
        if typos.get(i).copied().unwrap_or(false) {
            let wrong = if c == 'q' { 'w' } else { 'q' };
            keys.extend(KeyStroke::type_str(&wrong.to_string()));
            keys.push(KeyStroke::named("Backspace"));
        }
        keys.extend(KeyStroke::type_str(&c.to_string()));
    }
    keys
}

proptest! {
    #![proptest_config(crate::config(200, REGRESSIONS))]

    /// Any key sequence replays; each character maps to a key that typed
    /// it, in the order the key typed them; nothing typed is lost from the
    /// mapping; and a key with an empty name is refused by its index.
    #[test]
    fn every_character_maps_back_to_its_key(
        keys in prop::collection::vec(key_stroke(), 0..80),
        empty in prop::option::weighted(0.1, any::<prop::sample::Index>()),
    ) {
        let mut keys = keys;
        if let Some(at) = empty {
            keys.insert(at.index(keys.len() + 1), KeyStroke::named(""));
        }
        let r = replay(&keys);
        if let Some(bad) = keys.iter().position(|k| k.key.is_empty()) {
            let e = r.expect_err("an empty key name must be refused").to_string();
            prop_assert!(e.contains(&format!("key event {bad}")), "{}", e);
            return Ok(());
        }
        let r = r.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut in_text = vec![Vec::new(); keys.len()];
        let mut carried = vec![0usize; keys.len()];
        for c in &r.chars {
            prop_assert!(c.key < keys.len());
            in_text[c.key].push(c.ch);
            for &g in &c.ghosts {
                prop_assert!(g < keys.len());
                carried[g] += 1;
            }
        }
        for &g in &r.pending {
            prop_assert!(g < keys.len());
            carried[g] += 1;
        }
        for (i, k) in keys.iter().enumerate() {
            let typed = types(k);
            prop_assert!(is_subsequence(&in_text[i], &typed),
                "key {} ({:?}) typed {:?} but the text holds {:?} from it", i, k, typed, in_text[i]);
            prop_assert_eq!(in_text[i].len() + carried[i], typed.len(),
                "key {} ({:?}): characters lost from the mapping", i, k);
        }
    }

}

proptest! {
    #![proptest_config(crate::config(150, REGRESSIONS))]

    /// The redaction replays the same text, and masks every key behind a
    /// finding: the key of each character inside it and the keys deleted
    /// in its place.
    #[test]
    fn findings_mask_every_key_behind_them(
        keys in prop::collection::vec(key_stroke(), 0..60),
        secret in prop::option::of(crate::planted_secret()),
        at in any::<prop::sample::Index>(),
        prompt in prop::option::of(select(vec!["Password:", "bash", "notes.md - Code"])),
    ) {
        let mut keys = keys;
        if let Some(s) = &secret {
            let mut typed = KeyStroke::type_str(&format!(" {s} "));
            let at = at.index(keys.len() + 1);
            let tail = keys.split_off(at);
            keys.append(&mut typed);
            keys.extend(tail);
        }
        let mut book = Placeholders::new();
        let red = REDACTOR.redact_keys(&keys, prompt, &mut book)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let r = replay(&keys).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&red.text, &r.text());
        prop_assert_eq!(red.masked.len(), keys.len());
        prop_assert_eq!(red.finding_of.len(), keys.len());
        let mut at = 0;
        for c in &r.chars {
            let end = at + c.ch.len_utf8();
            if let Some(fi) = red.findings.iter().position(|f| f.start < end && at < f.end) {
                for k in std::iter::once(c.key).chain(c.ghosts.iter().copied()) {
                    prop_assert!(red.masked[k], "key {} is inside finding {:?} but not masked", k, red.findings[fi]);
                }
            }
            at = end;
        }
        for (m, f) in red.masked.iter().zip(&red.finding_of) {
            prop_assert_eq!(*m, f.is_some());
        }
    }

}

proptest! {
    #![proptest_config(crate::config(150, REGRESSIONS))]

    /// A token typed with typos fixed by Backspace, between plain words:
    /// it never reaches the redacted text, and every key that typed part of
    /// it, typos included, is masked.
    #[test]
    fn a_secret_typed_with_typos_is_masked_key_by_key(
        before in crate::plain_words(),
        secret in crate::planted_secret(),
        typos in prop::collection::vec(prop::bool::weighted(0.1), 0..140),
        after in crate::plain_words(),
        enter in any::<bool>(),
    ) {
        let mut keys = KeyStroke::type_str(&format!("{before} "));
        let start = keys.len();
        keys.extend(typed_with_typos(&secret, &typos));
        let end = keys.len();
        keys.extend(if enter { vec![KeyStroke::named("Return")] } else { KeyStroke::type_str(" ") });
        keys.extend(KeyStroke::type_str(&after));
        let mut book = Placeholders::new();
        let red = REDACTOR.redact_keys(&keys, None, &mut book)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(!red.redacted.contains(&secret), "{} survived: {}", secret, red.redacted);
        for (k, key) in keys.iter().enumerate().take(end).skip(start) {
            if key.key != "Backspace" {
                prop_assert!(red.masked[k], "key {} ({:?}) of {} is not masked", k, key, secret);
            }
        }
        prop_assert!(red.redacted.starts_with(&before), "{:?}", red.redacted);
        // After Return, a line that follows a command which prompts for a
        // password (`su`, `ssh`...) is taken for the answer, by design.
        if !enter {
            prop_assert!(red.redacted.ends_with(&after), "{:?}", red.redacted);
        }
    }

}

proptest! {
    #![proptest_config(crate::config(200, REGRESSIONS))]

    /// The first line typed at a password prompt is masked whole, whatever
    /// it holds and however it was corrected.
    #[test]
    fn a_line_typed_at_a_password_prompt_is_masked(
        password in "[!-~]{1,24}",
        typos in prop::collection::vec(prop::bool::weighted(0.15), 0..24),
        rest in crate::plain_words(),
    ) {
        let mut keys = typed_with_typos(&password, &typos);
        let end = keys.len();
        keys.push(KeyStroke::named("Return"));
        keys.extend(KeyStroke::type_str(&rest));
        let mut book = Placeholders::new();
        let red = REDACTOR.redact_keys(&keys, Some("[sudo] password for me:"), &mut book)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        // The whole line is one placeholder: nothing of it is left.
        let first = red.redacted.split('\n').next().unwrap_or("");
        prop_assert!(first.starts_with("<SECRET:") && first.ends_with('>')
            && first.matches('<').count() == 1, "{:?} is not one placeholder", first);
        for (k, key) in keys.iter().enumerate().take(end) {
            if key.key != "Backspace" {
                prop_assert!(red.masked[k], "key {} ({:?}) is not masked", k, key);
            }
        }
    }
}
