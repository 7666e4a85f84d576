//! Key names (as rdev spells them) and their classes.
//!
//! Under `keys.timing` only the class of a key is kept, so this is the one
//! place that decides how much a class reveals. The capture source and the
//! synthetic generator both go through it.

/// The class of a key, by its rdev name (`KeyA`, `Num1`, `ShiftLeft`...).
/// One of [`crate::registry::KEY_CLASSES`].
pub fn class_of(key: &str) -> &'static str {
    match key {
        k if k.len() == 4 && k.starts_with("Key") => "letter",
        k if k.len() == 4 && k.starts_with("Num") && k.as_bytes()[3].is_ascii_digit() => "digit",
        k if k.starts_with("Kp") && k.len() == 3 && k.as_bytes()[2].is_ascii_digit() => "digit",
        "Space" => "space",
        "Minus" | "Equal" | "LeftBracket" | "RightBracket" | "SemiColon" | "Quote"
        | "BackQuote" | "BackSlash" | "IntlBackslash" | "Comma" | "Dot" | "Slash" | "KpMinus"
        | "KpPlus" | "KpMultiply" | "KpDivide" => "punctuation",
        "ShiftLeft" | "ShiftRight" | "ControlLeft" | "ControlRight" | "Alt" | "AltGr"
        | "MetaLeft" | "MetaRight" | "CapsLock" | "Function" => "modifier",
        "UpArrow" | "DownArrow" | "LeftArrow" | "RightArrow" | "Home" | "End" | "PageUp"
        | "PageDown" => "navigation",
        "Return" | "KpReturn" | "Backspace" | "Delete" | "Tab" | "Insert" | "Escape" => "edit",
        k if k.starts_with('F') && k[1..].parse::<u8>().is_ok() => "function",
        _ => "other",
    }
}

/// The US-layout key that types `c`, and whether Shift is needed.
pub fn us_key_for_char(c: char) -> Option<(String, bool)> {
    let shifted_digits = ")!@#$%^&*(";
    let named = |n: &str, shift| Some((n.to_owned(), shift));
    match c {
        'a'..='z' => Some((format!("Key{}", c.to_ascii_uppercase()), false)),
        'A'..='Z' => Some((format!("Key{c}"), true)),
        '0'..='9' => Some((format!("Num{c}"), false)),
        ' ' => named("Space", false),
        '\n' => named("Return", false),
        '\t' => named("Tab", false),
        '-' => named("Minus", false),
        '_' => named("Minus", true),
        '=' => named("Equal", false),
        '+' => named("Equal", true),
        '[' => named("LeftBracket", false),
        '{' => named("LeftBracket", true),
        ']' => named("RightBracket", false),
        '}' => named("RightBracket", true),
        ';' => named("SemiColon", false),
        ':' => named("SemiColon", true),
        '\'' => named("Quote", false),
        '"' => named("Quote", true),
        ',' => named("Comma", false),
        '<' => named("Comma", true),
        '.' => named("Dot", false),
        '>' => named("Dot", true),
        '/' => named("Slash", false),
        '?' => named("Slash", true),
        '\\' => named("BackSlash", false),
        '|' => named("BackSlash", true),
        '`' => named("BackQuote", false),
        '~' => named("BackQuote", true),
        c => shifted_digits.find(c).map(|i| (format!("Num{i}"), true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::KEY_CLASSES;

    #[test]
    fn classes_are_declared_and_sensible() {
        for (k, class) in [
            ("KeyH", "letter"),
            ("Num7", "digit"),
            ("Space", "space"),
            ("Comma", "punctuation"),
            ("ShiftLeft", "modifier"),
            ("UpArrow", "navigation"),
            ("Backspace", "edit"),
            ("F5", "function"),
            ("Unknown(65027)", "other"),
            ("Kp7", "digit"),
        ] {
            assert_eq!(class_of(k), class, "{k}");
            assert!(KEY_CLASSES.contains(&class));
        }
    }

    #[test]
    fn every_printable_ascii_char_has_a_key() {
        for c in (b' '..=b'~').map(char::from) {
            let (key, _) = us_key_for_char(c).unwrap_or_else(|| panic!("no key for {c:?}"));
            assert_ne!(class_of(&key), "other", "{c:?} -> {key}");
        }
        assert_eq!(us_key_for_char('('), Some(("Num9".into(), true)));
    }
}
