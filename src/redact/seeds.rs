//! Wallet seed phrases: runs of at least twelve consecutive words from the
//! BIP-39 English list (also Electrum's) or from Monero's English list, in
//! any separator people write them with: spaces, commas, newlines, numbered
//! lists (`1. abandon`), quoted arrays, escaped newlines in JSON, diff
//! prefixes. A seed is the whole wallet, so it is a secret however it is
//! spelled.
//!
//! The word lists are the published ones, kept as data beside this file:
//! `wordlists/bip39-english.txt` (github.com/bitcoin/bips, bip-0039, 2048
//! words, SHA-256 2f5eed53…dbda) and `wordlists/monero-english.txt`
//! (github.com/monero-project/monero, src/mnemonics/english.h, 1626 words).
//!
//! Many list words are common English words (`about`, `also`, `because`),
//! so single words and short runs mean nothing: only twelve in a row count.
//! Common function words (`the`, `of`, `and`, `is`) are in neither list, and
//! they break runs in prose.
//!
//! The scan must touch every text, so it probes instead of reading every
//! word: a twelve-word run spans at least 47 bytes (12 words of 3 letters
//! and 11 one-byte gaps), so a probe every [`STRIDE`] bytes lands inside any
//! such run. Only a probe that lands on a list word expands to its run.

use std::sync::OnceLock;

use super::{Category, Finding};

const BIP39: &str = include_str!("wordlists/bip39-english.txt");
const MONERO: &str = include_str!("wordlists/monero-english.txt");

/// The fewest consecutive list words that make a seed. BIP-39 seeds are 12
/// to 24 words, Monero's 25 (13 for old MyMonero ones).
pub const MIN_WORDS: usize = 12;

/// A seed's words are drawn at random from 2048 (or 1626): a repeat is
/// rare (about 3% of 12-word seeds have one). Lists in code repeat
/// (`true, false, true`, `'border-left-width', 'border-left-style'`), so a
/// run needs at least this many distinct words...
const MIN_DISTINCT: usize = 11;
/// ...and at least this share of them, in percent.
const MIN_DISTINCT_PERCENT: usize = 80;

/// Probe spacing; must stay below the shortest span of a [`MIN_WORDS`] run
/// (3-letter words and one-byte gaps: 47 bytes).
const STRIDE: usize = 32;

/// The longest gap between two words of a seed (`",\n    "`, `\n+ 12. `).
const MAX_GAP: usize = 16;

/// The longest word of either list (Monero has a few of 10 to 12 letters).
const MAX_WORD: usize = 12;

const IN_BIP39: u8 = 1;
const IN_MONERO: u8 = 2;

/// Packs an ASCII word of 1 to [`MAX_WORD`] letters, any case, into a
/// number: five bits a letter, none of them zero, so every word has its
/// own. `None` for anything else.
fn pack(w: &[u8]) -> Option<u64> {
    if w.is_empty() || w.len() > MAX_WORD {
        return None;
    }
    let mut k = 0u64;
    for &c in w {
        let l = c.to_ascii_lowercase();
        if !l.is_ascii_lowercase() {
            return None;
        }
        k = (k << 5) | u64::from(l - b'a' + 1);
    }
    Some(k)
}

/// Slots of the lookup table: a power of two, over twice the 3,600 words.
const SLOTS: usize = 1 << 13;

/// Both lists as an open-addressing table of packed words and the lists
/// that hold each. The scan looks up a word every few dozen bytes of all
/// text, so a lookup is a multiply and a probe or two, not a binary search
/// of strings.
fn table() -> &'static [(u64, u8)] {
    static TABLE: OnceLock<Vec<(u64, u8)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = vec![(0u64, 0u8); SLOTS];
        for (list, flag) in [(BIP39, IN_BIP39), (MONERO, IN_MONERO)] {
            for w in list.lines().map(str::trim).filter(|w| !w.is_empty()) {
                let Some(k) = pack(w.as_bytes()) else {
                    continue;
                };
                let mut i = slot(k);
                while t[i].0 != 0 && t[i].0 != k {
                    i = (i + 1) & (SLOTS - 1);
                }
                t[i] = (k, t[i].1 | flag);
            }
        }
        t
    })
}

fn slot(k: u64) -> usize {
    (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - 13)) as usize
}

/// Which lists hold the ASCII word `w` (any case): a bit set of
/// `IN_BIP39`/`IN_MONERO`, zero for neither.
fn lookup(w: &[u8]) -> u8 {
    if w.len() < 3 {
        return 0;
    }
    let Some(k) = pack(w) else {
        return 0;
    };
    let t = table();
    let mut i = slot(k);
    loop {
        match t[i] {
            (0, _) => return 0,
            (x, f) if x == k => return f,
            _ => i = (i + 1) & (SLOTS - 1),
        }
    }
}

fn letter(c: u8) -> bool {
    c.is_ascii_alphabetic()
}

/// Whether byte `i` may sit between two words of a seed. Letters may not,
/// except the `n`, `t`, `r` of an escape (`\n`) in JSON or source strings.
fn gap_byte(b: &[u8], i: usize) -> bool {
    match b[i] {
        b' ' | b'\t' | b'\n' | b'\r' | b',' | b';' | b':' | b'"' | b'\'' | b'`' | b'[' | b']'
        | b'(' | b')' | b'{' | b'}' | b'-' | b'_' | b'|' | b'/' | b'\\' | b'+' | b'*' | b'>'
        | b'#' | b'=' => true,
        // A numbered list's `12.`, not the full stop between sentences.
        b'.' => i > 0 && b[i - 1].is_ascii_digit(),
        c if c.is_ascii_digit() => true,
        b'n' | b't' | b'r' => i > 0 && b[i - 1] == b'\\',
        _ => false,
    }
}

/// The list word in the letter run `[s, e)`: the run itself, or the run
/// without a leading escape letter (`\nabandon` is `\n` + `abandon`).
/// Returns the word's start and its lists.
fn word(b: &[u8], s: usize, e: usize) -> Option<(usize, u8)> {
    let f = lookup(&b[s..e]);
    if f != 0 {
        return Some((s, f));
    }
    if s > 0 && b[s - 1] == b'\\' && matches!(b[s], b'n' | b't' | b'r') {
        let f = lookup(&b[s + 1..e]);
        if f != 0 {
            return Some((s + 1, f));
        }
    }
    None
}

/// The previous word before the one starting at `s`, across one valid
/// gap: its letter run `[start, end)`.
fn prev_word(b: &[u8], s: usize) -> Option<(usize, usize)> {
    let mut j = s;
    while j > 0 && s - j < MAX_GAP && gap_byte(b, j - 1) {
        j -= 1;
    }
    if j == s || j == 0 || !letter(b[j - 1]) {
        return None;
    }
    let end = j;
    let mut start = end;
    while start > 0 && letter(b[start - 1]) {
        start -= 1;
    }
    Some((start, end))
}

/// The next word after one ending at `e`, across one valid gap.
fn next_word(b: &[u8], e: usize) -> Option<(usize, usize)> {
    let mut k = e;
    while k < b.len() && k - e < MAX_GAP && gap_byte(b, k) {
        k += 1;
    }
    if k == e || k >= b.len() || !letter(b[k]) {
        return None;
    }
    let start = k;
    let mut end = k;
    while end < b.len() && letter(b[end]) {
        end += 1;
    }
    Some((start, end))
}

/// The maximal run of words in list `flag` through the word `[s, e)`:
/// its byte range, its word count and its count of distinct words.
/// `seen` is scratch space, reused across runs.
fn run(
    b: &[u8],
    s: usize,
    e: usize,
    flag: u8,
    seen: &mut Vec<u64>,
) -> (usize, usize, usize, usize) {
    let (mut rs, mut re) = (s, e);
    seen.clear();
    seen.extend(pack(&b[s..e]));
    while let Some((ps, pe)) = prev_word(b, rs) {
        match word(b, ps, pe) {
            Some((ws, f)) if f & flag != 0 => {
                rs = ws;
                seen.extend(pack(&b[ws..pe]));
            }
            _ => break,
        }
    }
    while let Some((ns, ne)) = next_word(b, re) {
        // A letter run glued after the gap is the word itself: escapes
        // were consumed as gap bytes.
        if lookup(&b[ns..ne]) & flag == 0 {
            break;
        }
        re = ne;
        seen.extend(pack(&b[ns..ne]));
    }
    let n = seen.len();
    if n < MIN_WORDS {
        return (rs, re, n, n);
    }
    seen.sort_unstable();
    seen.dedup();
    (rs, re, n, seen.len())
}

/// Appends a finding for every seed phrase in `text`.
pub fn scan(text: &str, out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let mut seen = Vec::new();
    let mut p = 0;
    while p < b.len() {
        // The letter run at or after the probe.
        let mut s = p;
        if letter(b[s]) {
            while s > 0 && letter(b[s - 1]) {
                s -= 1;
            }
        } else {
            match memchr_letter(&b[p..]) {
                Some(off) => s = p + off,
                None => break,
            }
        }
        let mut e = s;
        while e < b.len() && letter(b[e]) {
            e += 1;
        }
        let mut next = e.max(p) + STRIDE;
        if let Some((ws, flags)) = word(b, s, e) {
            for (flag, rule) in [(IN_BIP39, "seed-phrase"), (IN_MONERO, "monero-seed")] {
                if flags & flag == 0 {
                    continue;
                }
                let (rs, re, n, distinct) = run(b, ws, e, flag, &mut seen);
                if n >= MIN_WORDS
                    && distinct >= MIN_DISTINCT
                    && distinct * 100 >= n * MIN_DISTINCT_PERCENT
                {
                    out.push(Finding {
                        rule,
                        category: Category::Secret,
                        start: rs,
                        end: re,
                    });
                    next = next.max(re);
                } else {
                    next = next.max(re + STRIDE);
                }
            }
        }
        p = next;
    }
}

/// The offset of the first ASCII letter in `b`.
fn memchr_letter(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| letter(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        scan(text, &mut out);
        out.iter()
            .map(|f| (f.rule, &text[f.start..f.end]))
            .collect()
    }

    const SEED24: &str = "hamster diagram private dutch cause delay private meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict delay length";

    #[test]
    fn lists_are_the_published_ones() {
        assert_eq!(BIP39.lines().count(), 2048);
        assert_eq!(MONERO.lines().count(), 1626);
        assert_eq!(lookup(b"abandon"), IN_BIP39);
        assert_eq!(lookup(b"Zoo"), IN_BIP39);
        assert_eq!(lookup(b"abbey"), IN_MONERO);
        assert_eq!(lookup(b"the"), 0);
    }

    #[test]
    fn finds_seeds_in_every_separator() {
        assert_eq!(found(SEED24), [("seed-phrase", SEED24)]);
        let numbered: String = SEED24
            .split(' ')
            .enumerate()
            .map(|(i, w)| format!("{}. {w}\n", i + 1))
            .collect();
        assert_eq!(found(&numbered).len(), 1, "{numbered}");
        let json = format!("[\"{}\"]", SEED24.replace(' ', "\", \""));
        assert_eq!(found(&json).len(), 1);
        let escaped = format!("\"{}\"", SEED24.replace(' ', "\\n"));
        assert_eq!(found(&escaped).len(), 1);
        let csv = SEED24.replace(' ', ",").to_uppercase();
        assert_eq!(found(&csv).len(), 1);
    }

    #[test]
    fn short_runs_and_prose_are_kept() {
        // Eleven list words, then a word of neither list.
        assert_eq!(
            found("hamster diagram private dutch cause delay private meat slide toddler razor the end"),
            []
        );
        // A list that repeats itself is code, not a seed.
        assert_eq!(found(&"true, false, ".repeat(12)), []);
        assert_eq!(
            found(
                "Please review the pull request about the new feature, and also check the tests."
            ),
            []
        );
    }
}
