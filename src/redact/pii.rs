//! Personal-data detectors without keywords: e-mail addresses, phone numbers,
//! public IP addresses, MAC addresses, payment cards (Luhn), IBANs (mod 97)
//! and US SSNs.
//!
//! They are hand-written scanners rather than regexes because they must run
//! over every byte: e-mails start from `memchr('@')`, and every other family
//! starts from one pass over runs of digits, most of which are short numbers
//! in code and are rejected after a byte or two.

use std::net::Ipv6Addr;

use super::{Category, Finding};

fn finding(rule: &'static str, start: usize, end: usize) -> Finding {
    Finding {
        rule,
        category: Category::Pii,
        start,
        end,
    }
}

/// Runs every personal-data scanner over `text`, appending to `out`.
pub fn scan(text: &str, out: &mut Vec<Finding>) {
    emails(text, out);
    numbers(text, out);
    macs(text, out);
}

/// MAC addresses (`3c:22:fb:1a:9e:07`, `3C-22-FB-1A-9E-07`): a machine's
/// hardware identity, and so its owner's. Six hex pairs with one separator
/// throughout, not part of a longer run; the all-zero address is nobody's.
fn macs(text: &str, out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let part = |c: u8| c.is_ascii_hexdigit() || c == b':' || c == b'-';
    let mut next = 0;
    for p in memchr::memchr2_iter(b':', b'-', b) {
        if p < 2 || p - 2 < next {
            continue;
        }
        let s = p - 2;
        let e = s + 17;
        if e > b.len() || (s > 0 && (part(b[s - 1]) || b[s - 1].is_ascii_alphanumeric())) {
            continue;
        }
        let sep = b[p];
        let ok = (0..6).all(|k| {
            let at = s + 3 * k;
            b[at].is_ascii_hexdigit()
                && b[at + 1].is_ascii_hexdigit()
                && (k == 5 || b[at + 2] == sep)
        });
        let glued = e < b.len() && (part(b[e]) || b[e].is_ascii_alphanumeric() || b[e] == b'_');
        let zero = b[s..e].iter().all(|&c| c == b'0' || c == sep);
        if ok && !glued && !zero {
            out.push(finding("mac", s, e));
            next = e;
        }
    }
}

fn is_local_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'.'
}

/// Top-level names that are file extensions far more often than domains
/// (`icon@2x.png`, `pkg@1.0.tgz`).
const FILE_TLDS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "js", "ts", "tsx", "jsx", "css", "rs", "py",
    "go", "rb", "md", "txt", "json", "yaml", "yml", "toml", "lock", "tgz", "zip", "gz", "map",
    "html", "xml", "vue", "java", "kt", "swift", "sh", "log", "mp4", "pdf", "wasm",
];

/// Domains reserved for documentation (RFC 2606 and 6761): nobody's address.
fn is_reserved_domain(domain: &str) -> bool {
    let d = domain.to_ascii_lowercase();
    ["example.com", "example.org", "example.net", "example"]
        .iter()
        .any(|r| d == *r || d.ends_with(&format!(".{r}")))
        || [".test", ".invalid", ".localhost", ".local"]
            .iter()
            .any(|s| d.ends_with(s))
        || d == "localhost"
}

fn emails(text: &str, out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    for at in memchr::memchr_iter(b'@', b) {
        let mut s = at;
        while s > 0 && at - s < 64 && is_local_char(b[s - 1]) {
            s -= 1;
        }
        while s < at && b[s] == b'.' {
            s += 1;
        }
        if s == at || b[at - 1] == b'.' {
            continue;
        }
        // `scheme://user:password@host` is a URL's user-info, not an address
        // (the URL rules judge the password).
        let floor = s.saturating_sub(256);
        let token_start = b[floor..s]
            .iter()
            .rposition(|c| c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b'<' | b'('))
            .map_or(floor, |p| floor + p + 1);
        if memchr::memmem::find(&b[token_start..s], b"://").is_some() {
            continue;
        }
        let mut e = at + 1;
        while e < b.len() && e - at < 255 && is_domain_char(b[e]) {
            e += 1;
        }
        while e > at + 1 && matches!(b[e - 1], b'.' | b'-') {
            e -= 1;
        }
        let domain = &text[at + 1..e];
        let local = &text[s..at];
        let mut labels = domain.split('.');
        let tld = domain.rsplit('.').next().unwrap_or("");
        if !domain.contains('.')
            || labels.any(|l| l.is_empty())
            || tld.len() < 2
            || !tld.bytes().all(|c| c.is_ascii_alphabetic())
            || FILE_TLDS.contains(&tld.to_ascii_lowercase().as_str())
            || is_reserved_domain(domain)
            || matches!(local, "git" | "noreply" | "no-reply")
            || local.ends_with("noreply")
        {
            continue;
        }
        out.push(finding("email", s, e));
    }
}

fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum % 10 == 0
}

/// Issuer prefixes of the major card networks, so that a random 16-digit
/// number passes only when it could be a card (Luhn alone lets 1 in 10 by).
fn card_prefix_ok(d: &[u8]) -> bool {
    let n = |k: usize| d[..k].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    let len = d.len();
    match d[0] {
        4 => matches!(len, 13 | 16 | 19),
        5 => (51..=55).contains(&n(2)) && len == 16,
        2 => (2221..=2720).contains(&n(4)) && len == 16,
        3 => {
            (matches!(n(2), 34 | 37) && len == 15)
                || (n(2) == 35 && (16..=19).contains(&len))
                || (matches!(n(2), 30 | 36 | 38 | 39) && (14..=19).contains(&len))
        }
        6 => {
            (n(4) == 6011 || n(2) == 65 || (644..=649).contains(&n(3)) || n(2) == 62)
                && (16..=19).contains(&len)
        }
        _ => false,
    }
}

/// IBAN lengths by country (ISO 13616 registry, common countries).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VG", 24),
    ("XK", 20),
];

fn iban_mod97(chars: &[u8]) -> bool {
    let mut rem = 0u32;
    for &c in chars[4..].iter().chain(&chars[..4]) {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// An IBAN starting at `s` (two capital letters, two digits), with optional
/// single spaces between groups of four. Returns its end.
fn iban_at(b: &[u8], s: usize) -> Option<usize> {
    let cc = std::str::from_utf8(&b[s..s + 2]).ok()?;
    let want = IBAN_LENGTHS.iter().find(|(c, _)| *c == cc)?.1;
    let mut chars = Vec::with_capacity(want);
    let mut i = s;
    let mut end = s;
    while i < b.len() && chars.len() < want {
        let c = b[i];
        if c.is_ascii_digit() || c.is_ascii_uppercase() {
            chars.push(c);
            i += 1;
            end = i;
        } else if c == b' '
            && chars.len() % 4 == 0
            && i + 1 < b.len()
            && b[i + 1].is_ascii_alphanumeric()
        {
            i += 1;
        } else {
            break;
        }
    }
    let after_ok = end >= b.len() || !b[end].is_ascii_alphanumeric();
    (chars.len() == want && after_ok && iban_mod97(&chars)).then_some(end)
}

fn ipv4_public(o: [u32; 4]) -> bool {
    let [a, b, c, _] = o;
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

/// Parses `d.d.d.d` at `s`; returns the end when it is a public address not
/// glued to more dotted numbers (a four-part version such as `1.2.3.4.5`).
fn ipv4_at(b: &[u8], s: usize) -> Option<usize> {
    let mut o = [0u32; 4];
    let mut i = s;
    for (k, slot) in o.iter_mut().enumerate() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 4 {
            *slot = *slot * 10 + u32::from(b[i] - b'0');
            i += 1;
        }
        let len = i - start;
        if len == 0 || len > 3 || *slot > 255 || (len > 1 && b[start] == b'0') {
            return None;
        }
        if k < 3 {
            if i >= b.len() || b[i] != b'.' {
                return None;
            }
            i += 1;
        }
    }
    let glued = i < b.len()
        && (b[i].is_ascii_alphanumeric()
            || b[i] == b'_'
            || (matches!(b[i], b'.' | b'-')
                && i + 1 < b.len()
                && b[i + 1].is_ascii_alphanumeric()));
    // Two single-digit leading parts (`2.5.4.3`, `1.5.4.7`) are X.500 OIDs
    // and versions far more often than anyone's address.
    let oid_like = o[0] < 10 && o[1] < 10 && b[s + 1] == b'.' && b[s + 3] == b'.';
    (!glued && !oid_like && ipv4_public(o)).then_some(i)
}

/// A global unicast IPv6 address (2000::/3, not the documentation prefix)
/// starting at `s`.
fn ipv6_at(text: &str, s: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut e = s;
    while e < b.len() && e - s < 45 && (b[e].is_ascii_hexdigit() || b[e] == b':' || b[e] == b'.') {
        e += 1;
    }
    while e > s && matches!(b[e - 1], b'.') {
        e -= 1;
    }
    if e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'_') {
        return None;
    }
    let cand = &text[s..e];
    if cand.bytes().filter(|&c| c == b':').count() < 2 {
        return None;
    }
    let addr: Ipv6Addr = cand.parse().ok()?;
    let seg = addr.segments();
    let global = (seg[0] & 0xe000) == 0x2000 && !(seg[0] == 0x2001 && seg[1] == 0x0db8);
    global.then_some(e)
}

/// A US SSN `ddd-dd-dddd` at `s`, excluding numbers never issued.
fn ssn_at(b: &[u8], s: usize) -> Option<usize> {
    let e = s + 11;
    if e > b.len() {
        return None;
    }
    let w = &b[s..e];
    let shape = w.iter().enumerate().all(|(i, c)| match i {
        3 | 6 => *c == b'-',
        _ => c.is_ascii_digit(),
    });
    if !shape || (e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'-')) {
        return None;
    }
    let area = &w[0..3];
    let ok = area != b"000"
        && area != b"666"
        && area[0] != b'9'
        && &w[4..6] != b"00"
        && &w[7..11] != b"0000";
    ok.then_some(e)
}

/// A number written with single spaces, dashes, dots or brackets between
/// groups of digits. Fixed arrays, not vectors: this runs on every number
/// in the text, and most are rejected at once.
struct Grouped {
    digits: [u8; 21],
    n: usize,
    groups: [u8; 8],
    n_groups: usize,
    end: usize,
    /// Separator kinds seen, as bits: 1 space, 2 dash, 4 dot, 8 bracket.
    seps: u8,
}

impl Grouped {
    fn digits(&self) -> &[u8] {
        &self.digits[..self.n]
    }

    fn groups(&self) -> &[u8] {
        &self.groups[..self.n_groups]
    }
}

/// Reads a grouped number starting at `s`, up to 20 digits.
fn grouped_digits(b: &[u8], s: usize) -> Grouped {
    let mut g = Grouped {
        digits: [0; 21],
        n: 0,
        groups: [0; 8],
        n_groups: 0,
        end: s,
        seps: 0,
    };
    let mut i = s;
    let mut in_group = false;
    while i < b.len() && g.n < 20 {
        let c = b[i];
        if c.is_ascii_digit() {
            if !in_group {
                if g.n_groups == g.groups.len() {
                    break;
                }
                g.n_groups += 1;
                in_group = true;
            }
            g.groups[g.n_groups - 1] += 1;
            g.digits[g.n] = c - b'0';
            g.n += 1;
            i += 1;
            g.end = i;
        } else if matches!(c, b' ' | b'-' | b'.' | b'(' | b')')
            && in_group
            && i + 1 < b.len()
            && (b[i + 1].is_ascii_digit()
                || (c == b')' && b[i + 1] == b' ' && i + 2 < b.len() && b[i + 2].is_ascii_digit()))
        {
            g.seps |= match c {
                b' ' => 1,
                b'-' => 2,
                b'.' => 4,
                _ => 8,
            };
            in_group = false;
            i += if c == b')' && b[i + 1] == b' ' { 2 } else { 1 };
        } else {
            break;
        }
    }
    g
}

fn glued_after(b: &[u8], e: usize) -> bool {
    e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'_')
}

/// The index of the next ASCII digit at or after `i` (or `b.len()`),
/// eight bytes at a time: most text has no digit in most words, and this
/// loop sees every byte.
fn next_digit(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while i + 8 <= b.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&b[i..i + 8]);
        let x = u64::from_le_bytes(word);
        // "hasbetween(x, '/', ':')" from Bit Twiddling Hacks: the high bit
        // of each byte strictly between 0x2F and 0x3A, exact per byte.
        let low = x & (ONES * 127);
        let t = (ONES * (127 + 0x3A)).wrapping_sub(low)
            & !x
            & low.wrapping_add(ONES * (127 - 0x2F))
            & HIGH;
        if t != 0 {
            return i + (t.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

fn numbers(text: &str, out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let mut i = 0;
    loop {
        i = next_digit(b, i);
        if i >= b.len() {
            break;
        }
        let c = b[i];
        let prev = if i > 0 { b[i - 1] } else { b' ' };
        if prev.is_ascii_digit() {
            i += 1;
            continue;
        }
        // IBAN: two capitals glued before the check digits.
        if i >= 2
            && b[i - 1].is_ascii_uppercase()
            && b[i - 2].is_ascii_uppercase()
            && (i == 2 || !b[i - 3].is_ascii_alphanumeric())
        {
            if let Some(e) = iban_at(b, i - 2) {
                out.push(finding("iban", i - 2, e));
                i = e;
                continue;
            }
        }
        // A URL's host follows `://`: the `/` that marks a path part
        // elsewhere does not make `http://104.233.145.166:8080/` a path.
        let url_host = prev == b'/' && i >= 3 && &b[i - 3..i] == b"://";
        let word_start = url_host
            || !(prev.is_ascii_alphanumeric()
                || prev == b'_'
                || prev == b'.'
                || prev == b'-'
                || prev == b'/');
        if !word_start {
            // Part of an identifier, version or path, except IPv6, which may
            // follow a letter-free `[`.
            i += 1;
            continue;
        }
        if c == b'2' || c == b'3' {
            if let Some(e) = ipv6_at(text, i) {
                out.push(finding("ipv6", i, e));
                i = e;
                continue;
            }
        }
        if let Some(e) = ipv4_at(b, i) {
            if prev != b'v' {
                out.push(finding("ipv4", i, e));
            }
            i = e;
            continue;
        }
        if let Some(e) = ssn_at(b, i) {
            out.push(finding("ssn", i, e));
            i = e;
            continue;
        }
        let g = grouped_digits(b, i);
        let (digits, end, groups, seps) = (g.digits(), g.end, g.groups(), g.seps);
        let n = digits.len();
        if n < 8 || glued_after(b, end) {
            i = end.max(i + 1);
            continue;
        }
        // Cards: 13-19 digits, plain or grouped with spaces or dashes only.
        if (13..=19).contains(&n) && seps & !3 == 0 && card_prefix_ok(digits) && luhn(digits) {
            out.push(finding("payment-card", i, end));
            i = end;
            continue;
        }
        // International: `+` then country code; 8 to 15 digits.
        let plus = prev == b'+' && (i < 2 || !b[i - 2].is_ascii_alphanumeric());
        let open = prev == b'(' && (i < 2 || !b[i - 2].is_ascii_alphanumeric());
        if plus && (8..=15).contains(&n) && digits[0] != 0 {
            out.push(finding("phone", i - 1, end));
            i = end;
            continue;
        }
        // National: a trunk `0` or a NANP area code, grouped (never a bare
        // run of digits, which is an id or a timestamp far more often).
        // Groups of one digit (`0 1 2 3`) or a decimal point after one digit
        // (`(4.294967294`) are lists and numbers, not phones.
        let grouped = groups.len() >= 2 && seps != 0 && groups.iter().all(|&g| g >= 2);
        let nanp = groups == [3, 3, 4] && digits[0] >= 2 && digits[3] >= 2;
        let trunk =
            digits[0] == 0 && digits.get(1).is_some_and(|&d| d != 0) && (10..=11).contains(&n);
        if grouped && (nanp || trunk) {
            let s = if open { i - 1 } else { i };
            out.push(finding("phone", s, end));
            i = end;
            continue;
        }
        i = end.max(i + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        scan(text, &mut out);
        out.iter()
            .map(|f| (f.rule, &text[f.start..f.end]))
            .collect()
    }

    #[test]
    fn next_digit_matches_a_plain_scan() {
        let samples: [&[u8]; 4] = [
            b"no digits here at all, just words and punctuation!",
            b"abcdefgh/:9xyz",
            b"\xc3\xa9\xc3\xa9\xc3\xa9\xff\xfe7 \x80",
            b"0123456789",
        ];
        for s in samples {
            for start in 0..=s.len() {
                let plain = (start..s.len())
                    .find(|&i| s[i].is_ascii_digit())
                    .unwrap_or(s.len());
                assert_eq!(next_digit(s, start), plain, "{s:?} from {start}");
            }
        }
        let all: Vec<u8> = (0..=255).collect();
        for start in 0..all.len() {
            let plain = (start..all.len())
                .find(|&i| all[i].is_ascii_digit())
                .unwrap_or(all.len());
            assert_eq!(next_digit(&all, start), plain);
        }
    }

    #[test]
    fn checksums() {
        assert!(luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
        assert!(iban_mod97(b"GB82WEST12345698765432"));
        assert!(!iban_mod97(b"GB82WEST12345698765433"));
    }

    #[test]
    fn mac_addresses_are_found_and_look_alikes_kept() {
        let found = |t: &str| {
            let mut v = Vec::new();
            macs(t, &mut v);
            v.iter()
                .map(|f| &t[f.start..f.end])
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(found("ether 3c:22:fb:1a:9e:07 brd"), "3c:22:fb:1a:9e:07");
        assert_eq!(found("HWaddr 3C-22-FB-1A-9E-07."), "3C-22-FB-1A-9E-07");
        assert_eq!(found("00:00:00:00:00:00"), "");
        assert_eq!(found("3c:22:fb-1a:9e:07"), "", "mixed separators");
        assert_eq!(found("fe80::3c22:fbff:fe1a:9e07"), "");
        assert_eq!(found("3c:22:fb:1a:9e:07:11"), "", "part of a longer run");
        assert_eq!(found("at 12:30:45 then"), "");
        assert_eq!(found("x3c:22:fb:1a:9e:07"), "");
    }

    #[test]
    fn finds_each_family() {
        assert_eq!(
            rules("mail jane.fake@corp-mail.io now"),
            [("email", "jane.fake@corp-mail.io")]
        );
        assert_eq!(
            rules("card 4111 1111 1111 1111."),
            [("payment-card", "4111 1111 1111 1111")]
        );
        assert_eq!(
            rules("IBAN GB82 WEST 1234 5698 7654 32"),
            [("iban", "GB82 WEST 1234 5698 7654 32")]
        );
        assert_eq!(rules("ssn 123-45-6789"), [("ssn", "123-45-6789")]);
        assert_eq!(rules("from 93.184.216.34:53"), [("ipv4", "93.184.216.34")]);
        assert_eq!(
            rules("curl http://104.233.145.166:8080/health"),
            [("ipv4", "104.233.145.166")]
        );
        assert_eq!(
            rules("GET https://[2a00:1450:4007:80e::200e]:443/x"),
            [("ipv6", "2a00:1450:4007:80e::200e")]
        );
        assert_eq!(
            rules("peer 2a00:1450:4007:80e::200e up"),
            [("ipv6", "2a00:1450:4007:80e::200e")]
        );
        assert_eq!(
            rules("call +44 20 7946 0958"),
            [("phone", "+44 20 7946 0958")]
        );
        assert_eq!(rules("call (415) 555-2671"), [("phone", "(415) 555-2671")]);
        assert_eq!(rules("tel 06 12 34 56 78"), [("phone", "06 12 34 56 78")]);
    }

    #[test]
    fn keeps_what_is_not_personal() {
        for t in [
            "127.0.0.1 10.1.2.3 192.168.1.1 172.16.0.9 ::1 fe80::1 2001:db8::1",
            "http://127.0.0.1:8080/ http://10.0.0.5/x https://192.168.1.1:8443 http://[::1]:3000/",
            "https://203.0.113.7/doc http://[2001:db8::1]/ see /usr/lib/1.2.3.4/x",
            "version 1.2.3.4.5 and v8.8.8.8, since 1.5.4.7, oid \"2.5.4.3\"",
            "ts = 1700000000000; id = 4111111111111112",
            "git@github.com:owner/repo.git icon@2x.png user@example.com",
            "date 2024-06-01 12:30:45, 3.14159, 0x7fffffff",
            "uuid 29f63271-dc2f-4734-8221-5b31b5169bac",
            "let x = a+1234567890;",
            "10 => (0 1 2 3 4 5 6 7 8 9), check!(4.294967294); check!(536870912.0);",
        ] {
            assert_eq!(rules(t), [], "{t}");
        }
    }
}
