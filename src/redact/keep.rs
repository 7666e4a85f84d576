//! The keep-list: values that look like secrets to a regex but must survive,
//! because redacting them would wreck code for no privacy gain. Placeholders,
//! references to environment variables and vaults, hashes and checksums,
//! UUIDs used as ids, versions, numbers and identifiers.
//!
//! Everything here is cheap string inspection; it only runs on the few
//! candidates a rule's regex produced.

/// Shannon entropy of `s` in bits per byte.
pub fn entropy(s: &str) -> f32 {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let n = bytes.len() as f32;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f32 / n;
            -p * p.log2()
        })
        .sum()
}

/// One of Candor's own placeholders (`<SECRET:github-pat#1>`, `<EMAIL#2>`).
/// Redacted text is scanned again by `verify`, so they must never match.
pub fn is_candor_placeholder(s: &str) -> bool {
    s.contains("<SECRET:") || {
        // `<LABEL#n>` anywhere inside.
        let b = s.as_bytes();
        b.iter().enumerate().any(|(i, &c)| {
            c == b'<' && {
                let rest = &b[i + 1..];
                let label = rest.iter().take_while(|c| c.is_ascii_uppercase()).count();
                label >= 2 && rest.get(label) == Some(&b'#')
            }
        })
    }
}

/// Words people write where a real value will go.
const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "change_me",
    "change-me",
    "changeit",
    "placeholder",
    "redacted",
    "example",
    "dummy",
    "sample",
    "your",
    "insert",
    "replace",
    "fixme",
    "todo",
    "notreal",
    "not_real",
    "not-a-real",
];

/// Bare values that are never a literal secret.
const NON_VALUES: &[&str] = &[
    "null",
    "none",
    "nil",
    "true",
    "false",
    "undefined",
    "required",
    "optional",
    "string",
    "str",
    "bool",
    "int",
    "text",
    "password",
    "passwd",
    "secret",
    "token",
    "hidden",
    "empty",
    "default",
    "admin",
    "user",
    "username",
    "pass",
    "bearer",
    "basic",
    "prompt",
    "stdin",
    "test",
];

/// A word that stands where a value would (`null`, `required`, `password`).
pub fn is_non_value(v: &str) -> bool {
    NON_VALUES.iter().any(|w| w.eq_ignore_ascii_case(v))
}

/// An obvious placeholder: `<your-api-key>`, `changeme`, `xxxx...`, `****`,
/// a template slot, a run of the alphabet, or one character repeated.
/// `words` also checks placeholder words (`example`, `your`, `dummy`...);
/// provider formats skip that, because real tokens can spell them.
pub fn is_placeholder(v: &str, words: bool) -> bool {
    let t = v.trim_matches(|c: char| c == '"' || c == '\'' || c == '`');
    if t.is_empty() || is_candor_placeholder(t) {
        return true;
    }
    let lower = t.to_ascii_lowercase();
    let slot = |open: char, close: char| {
        t.len() > 2
            && t.starts_with(open)
            && t.ends_with(close)
            && is_identifier_like(&t[1..t.len() - 1].replace(' ', "_"))
    };
    if t.starts_with('<')
        || slot('{', '}')
        || slot('[', ']')
        // Four x's are a placeholder in a value people type; a provider's
        // random body holds `xXxX` about once in 30,000 tokens, so there a
        // placeholder takes eight.
        || lower.contains(if words { "xxxx" } else { "xxxxxxxx" })
        || t.contains("****")
        || t.contains("####")
        || t.contains("•••")
        || (words
            && (alphabet_run(t) >= 8
                || PLACEHOLDER_WORDS.iter().any(|w| lower.contains(w))
                || lower.ends_with("here")))
    {
        return true;
    }
    // One character (or two, alternating) repeated: aaaaaaaa, 00000000.
    let mut distinct = [false; 256];
    let mut n = 0;
    for &b in t.as_bytes() {
        if !distinct[b as usize] {
            distinct[b as usize] = true;
            n += 1;
        }
    }
    n <= 2 && t.len() >= 3
}

/// The longest run of consecutive letters of one case (`mnopqrst`): people
/// type the alphabet as a stand-in; generators almost never produce it.
fn alphabet_run(t: &str) -> usize {
    let b = t.as_bytes();
    let (mut best, mut run) = (1, 1);
    for w in b.windows(2) {
        let same_case = (w[0].is_ascii_lowercase() && w[1].is_ascii_lowercase())
            || (w[0].is_ascii_uppercase() && w[1].is_ascii_uppercase());
        if same_case && w[1] == w[0] + 1 {
            run += 1;
            best = best.max(run);
        } else {
            run = 1;
        }
    }
    best
}

/// A reference to where the secret lives rather than the secret itself:
/// environment variables, vaults, command substitutions, template slots.
pub fn is_reference(v: &str) -> bool {
    let t = v.trim_matches(|c: char| c == '"' || c == '\'' || c == '`');
    let lower = t.to_ascii_lowercase();
    t.starts_with('$')
        || t.starts_with("{{")
        || t.contains("${")
        || t.contains("$(")
        || t.contains("{{")
        || (t.len() > 2 && t.starts_with('%') && t.ends_with('%'))
        || lower.starts_with("env.")
        || lower.starts_with("env[")
        || lower.starts_with("env:")
        || lower.starts_with("secrets.")
        || lower.starts_with("vault:")
        || lower.starts_with("vault(")
        || lower.starts_with("op://")
        || lower.starts_with("ssm:")
        || lower.starts_with("arn:aws:")
        || lower.starts_with("awssecretsmanager")
        || lower.contains("os.environ")
        || lower.contains("process.env")
        || lower.contains("getenv")
        || lower.contains("env::var")
        || lower.contains("system.getenv")
        || lower.contains("secretkeyref")
        || lower.contains("valuefrom")
}

/// Lockfile integrity strings and content digests: `sha512-...`, `sha256:...`.
pub fn is_digest(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    [
        "sha1-", "sha256-", "sha384-", "sha512-", "md5-", "sha1:", "sha256:", "sha512:", "md5:",
        "h1:",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
}

/// A run of hex digits of a hash's length (git SHAs, MD5, SHA-256), in one
/// case, as tools print them (`6d2FabeB...` is a token, not a digest).
pub fn is_hex_hash(v: &str) -> bool {
    matches!(v.len(), 7..=12 | 32 | 40 | 64 | 128)
        && (v
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            || v.bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)))
}

/// 8-4-4-4-12 hex.
pub fn is_uuid(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Numbers, versions and dates: `42`, `3.14`, `v1.2.3-rc.1`, `2024-06-01`.
/// A run of 20 or more bare digits is not a number anyone writes in code:
/// it is an id or a secret, and is left to the rules.
pub fn is_version_or_number(v: &str) -> bool {
    let t = v
        .strip_prefix('v')
        .or_else(|| v.strip_prefix('V'))
        .unwrap_or(v);
    if t.len() >= 20 && t.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        if !hex.is_empty()
            && hex.len() <= 32
            && hex.bytes().all(|b| b.is_ascii_hexdigit() || b == b'_')
        {
            return true;
        }
    }
    // Literals with a type suffix: `-2147483648i32`, `1048576u32`, `1.5f64`.
    let digits = t
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.' || *b == b'_')
        .count();
    if digits > 0 && t.as_bytes()[0].is_ascii_digit() {
        let suffix = t[digits..].to_ascii_lowercase();
        const SUFFIXES: &[&str] = &[
            "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize",
            "f32", "f64", "u", "l", "ul", "ull", "ll", "f", "d", "n", "m",
        ];
        if SUFFIXES.contains(&suffix.as_str()) {
            return true;
        }
    }
    let Some(first) = t.bytes().next() else {
        return false;
    };
    if !first.is_ascii_digit() {
        return false;
    }
    // Digits and separators, then an optional short tag (`-rc.1`, `b2`).
    let numeric = t
        .bytes()
        .take_while(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_' | b':'))
        .count();
    let rest = &t[numeric..];
    let dotted = t[..numeric].contains('.') || t[..numeric].contains('-');
    rest.is_empty()
        || (dotted
            && rest.len() <= 16
            && rest
                .split(['.', '-', '+', '_'])
                .all(|w| w.len() <= 8 && w.bytes().all(|b| b.is_ascii_alphanumeric())))
}

/// A comparison, not a value: `default_rc==0`.
pub fn is_comparison(v: &str) -> bool {
    v.find("==").is_some_and(|i| {
        let lhs = &v[..i];
        let rhs = &v[i..].trim_start_matches('=');
        !rhs.is_empty()
            && lhs
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && lhs
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.'))
            && is_compound_word(lhs)
    })
}

/// Code, not a value: `self.api_key`, `config::TOKEN`, `a->b`, a hostname or
/// package path (`int.contoso.com`, `org.slf4j.api`), a file path, a URL
/// without credentials, or a word in snake/kebab/camel case without digits.
pub fn is_identifier_like(v: &str) -> bool {
    let t = v.trim_matches(|c: char| c == '"' || c == '\'' || c == '`');
    if t.starts_with('/')
        || t.starts_with("./")
        || t.starts_with("../")
        || t.starts_with("~/")
        || t.contains("://")
    {
        return true;
    }
    let is_ident = |w: &str| {
        let mut bytes = w.bytes();
        matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && is_compound_word(w)
    };
    // Member access and paths: every segment an identifier.
    for sep in ["::", "->", "."] {
        if t.contains(sep) && t.split(sep).all(is_ident) {
            // A dotted path with lowercase segments, or any `::`/`->` path.
            return true;
        }
    }
    // Hostnames: lowercase labels of letters, digits and dashes.
    if t.contains('.')
        && t.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        && t.rsplit('.')
            .next()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_lowercase()))
    {
        return true;
    }
    // Constants: `D3DKMT_PRESENTHISTORYTOKEN`, `TRANSACTIONMANAGER_INFO`.
    let screaming = t.contains('_')
        && t.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
        && t.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && t.split('_').all(|seg| seg.len() <= 24);
    // Words: snake_case, kebab-case, camelCase, Title Case, `DOC_Vector_5_32`.
    screaming || is_compound_word(t)
}

/// Words joined by `_ - . : = space` or camel case, where digits only end a
/// word (`Gost28147`, `x64`) or stand alone (`1208358310`): names, not noise.
pub fn is_compound_word(t: &str) -> bool {
    let mut letters = 0;
    let ok = t
        .split(['_', '-', ' ', '.', ':', '='])
        .filter(|w| !w.is_empty())
        .all(|w| {
            let alpha = w.bytes().take_while(u8::is_ascii_alphabetic).count();
            letters += alpha;
            let parts: Vec<&str> = camel_parts(&w[..alpha]).collect();
            // Random strings split into many one- or two-letter parts
            // (`yq`, `D`, `Vtkq`, `PE`...); names mostly into words.
            let tiny = parts.iter().filter(|p| p.len() <= 2).count();
            w.bytes().skip(alpha).all(|b| b.is_ascii_digit())
                && parts.iter().all(|p| word_like(p))
                && (parts.len() <= 2 || tiny * 2 <= parts.len())
        });
    ok && letters >= 1
}

/// Common abbreviations without a vowel.
const ABBREVIATIONS: &[&str] = &[
    "ptr", "btn", "cnt", "msg", "mgr", "ctx", "src", "dst", "tmp", "str", "fmt", "cmd", "cfg",
    "pkg", "lst", "wnd", "hwnd", "dflt", "vtbl", "pwd", "pswd", "sql", "xml", "rgb", "px", "std",
    "nth", "bg", "fg", "rx", "tx", "ws", "db", "fs", "sync", "rst", "clk", "hdr", "lck", "mtx",
];

/// One camel-case part that could be a word, an abbreviation or an acronym:
/// `Generate`, `Ssl`, `Dflt`, `PCWSTR`. Random strings give parts like
/// `Qzvkxt` (five letters or more, no vowel) or `aBcD` (mixed case). Short
/// parts cannot tell: letters-only random values can pass for names, which
/// is why format rules never ask this question, and assignment rules also
/// count one- and two-letter parts (see [`is_compound_word`]).
fn word_like(p: &str) -> bool {
    let upper = p.bytes().all(|b| b.is_ascii_uppercase());
    let vowel = p.bytes().any(|b| b"aeiouyAEIOUY".contains(&b));
    let mixed = p.bytes().skip(1).any(|b| b.is_ascii_uppercase())
        && p.bytes().any(|b| b.is_ascii_lowercase());
    p.len() <= 24
        && !mixed
        && (p.len() < 5
            || vowel
            || (upper && p.len() <= 8)
            || ABBREVIATIONS.iter().any(|a| a.eq_ignore_ascii_case(p)))
}

/// Camel-case parts: `BCryptKeyPairFn` → `B`, `Crypt`, `Key`, `Pair`, `Fn`.
fn camel_parts(w: &str) -> impl Iterator<Item = &str> {
    let b = w.as_bytes();
    let mut cuts = vec![0];
    for i in 1..b.len() {
        let lower_to_upper = b[i].is_ascii_uppercase() && b[i - 1].is_ascii_lowercase();
        let acronym_end = b[i].is_ascii_uppercase()
            && b[i - 1].is_ascii_uppercase()
            && b.get(i + 1).is_some_and(u8::is_ascii_lowercase);
        if lower_to_upper || acronym_end {
            cuts.push(i);
        }
    }
    cuts.push(b.len());
    (0..cuts.len() - 1).map(move |i| &w[cuts[i]..cuts[i + 1]])
}

/// Last word of an assignment's name: `AWS_SECRET_KEY_ID` → `id`,
/// `clientSecretName` → `name`.
fn last_word(name: &str) -> String {
    let seg = name
        .rsplit(|c: char| !c.is_ascii_alphanumeric())
        .find(|s| !s.is_empty())
        .unwrap_or("");
    camel_parts(seg).last().unwrap_or("").to_ascii_lowercase()
}

/// Names whose value describes a secret rather than being one:
/// `token_type`, `key_id`, `secret_name`, `password_length`.
const DESCRIPTIVE_SUFFIXES: &[&str] = &[
    "id",
    "ids",
    "uuid",
    "guid",
    "name",
    "names",
    "path",
    "file",
    "dir",
    "url",
    "uri",
    "endpoint",
    "type",
    "length",
    "len",
    "size",
    "count",
    "version",
    "format",
    "mode",
    "header",
    "prefix",
    "field",
    "hint",
    "label",
    "ref",
    "arn",
    "region",
    "kind",
    "alg",
    "algorithm",
    "expiry",
    "expires",
    "ttl",
    "timeout",
    "enabled",
    "provider",
    "class",
    "scope",
    "scopes",
    "method",
    "policy",
    "store",
    "column",
    "index",
    "pattern",
    "regex",
    "var",
    "env",
    "location",
    "host",
    "port",
    "user",
    "username",
    "email",
    "issuer",
    "audience",
    "domain",
    "source",
    "map",
    "strategy",
    "manager",
    "service",
    "handler",
    "fn",
    "func",
    "callback",
    "event",
    "events",
    "cache",
    "reset",
    "state",
    "status",
    "policy",
    "rotation",
    "required",
    "flag",
    "layout",
    "binding",
    "bindings",
    "style",
    "color",
    "icon",
    "hash",
    "sha",
    "digest",
    "checksum",
];

/// Words anywhere in a name that say the value is public or a hash.
const NON_SECRET_NAME_WORDS: &[&str] = &[
    "public",
    "pubkey",
    "cache",
    "sha",
    "hash",
    "checksum",
    "digest",
    "integrity",
    "commit",
    "etag",
    "fingerprint",
    "keyboard",
    "monkey",
    "turkey",
    "hotkey",
    "keystroke",
    "keymap",
    "keycode",
    "keyword",
    "keyframe",
    "keyspace",
    "keypress",
    "passport",
    "bypass",
    "passed",
    "passes",
    "passing",
    "passthrough",
    "pass_through",
    "compass",
    "passenger",
    "author",
    "accessor",
    "accessib",
    "sessionstorage",
];

/// Whether a name is about a password: `password`, `passwd`, `pwd`,
/// `passphrase`, or `pass` as its last word (`DB_PASS`, `mysqlpass`), but
/// not `RenderPassColorAttachment` or `passed_by_value`.
pub fn names_a_password(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["passw", "pwd", "pswd", "passphrase"]
        .iter()
        .any(|w| lower.contains(w))
        || last_word(name).ends_with("pass")
}

/// Whether an assignment's name says its value is not a secret.
pub fn name_is_descriptive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if NON_SECRET_NAME_WORDS.iter().any(|w| lower.contains(w)) {
        return true;
    }
    DESCRIPTIVE_SUFFIXES.contains(&last_word(name).as_str())
}

/// Whether a value assigned to a credential-like name is random enough to
/// be a generated secret: at least two character classes (lower, upper,
/// digit, symbol), a long mixed-case run, or 20 digits or more.
pub fn looks_random(v: &str) -> bool {
    let (mut lower, mut upper, mut digit, mut symbol) = (false, false, false, false);
    for b in v.bytes() {
        match b {
            b'a'..=b'z' => lower = true,
            b'A'..=b'Z' => upper = true,
            b'0'..=b'9' => digit = true,
            _ => symbol = true,
        }
    }
    let letters = lower || upper;
    let only_digits = digit && !letters && !symbol;
    (only_digits && v.len() >= 20)
        || (letters && digit)
        || (lower && upper && (symbol || v.len() >= 20))
        || (letters && symbol && v.len() >= 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_orders_strings() {
        assert_eq!(entropy(""), 0.0);
        assert_eq!(entropy("aaaa"), 0.0);
        assert!(entropy("Zq8FAKEsecretKEY0123") > entropy("passwordpassword"));
    }

    #[test]
    fn keep_list_recognises_what_must_survive() {
        for p in [
            "<your-api-key>",
            "changeme",
            "xxxxxxxxxxxx",
            "****",
            "<SECRET:jwt#1>",
            "<EMAIL#2>",
            "{password}",
            "abcdefghijklmnop123",
        ] {
            assert!(is_placeholder(p, true), "{p}");
        }
        assert!(!is_placeholder("{ZqL5kVrX1n8tA2}", true));
        assert!(!is_placeholder("FAKEexample0123", false));
        assert!(!is_placeholder(
            "ghp_A0aA0aA0AA0a0a0aAaaXXXxaAaAaAAABCijD",
            false
        ));
        assert!(is_placeholder(
            "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            false
        ));
        for r in [
            "${API_KEY}",
            "$TOKEN",
            "$(pass show db)",
            "%NUGET_PW%",
            "os.environ[\"K\"]",
            "{{ .Values.key }}",
        ] {
            assert!(is_reference(r), "{r}");
        }
        assert!(is_digest("sha512-AbC=="));
        assert!(is_hex_hash("3f786850e387550fdab836ed7e6dc881de23001b"));
        assert!(is_uuid("29f63271-dc2f-4734-8221-5b31b5169bac"));
        for v in ["1.2.3", "v2.0.0-rc.1", "2024-06-01", "42", "3.14"] {
            assert!(is_version_or_number(v), "{v}");
        }
        for i in [
            "self.api_key",
            "config::TOKEN",
            "int.contoso.com",
            "ultraPictureBox",
            "my-app-secret",
            "DOC_Vector_5_32",
            "SalesResults-1.2",
            "_LIBCPP_CONSTEXPR_AFTER_CXX11",
        ] {
            assert!(is_identifier_like(i), "{i}");
        }
        assert!(!is_identifier_like("Zq8FAKEsecret0123"));
        assert!(!is_identifier_like(
            "hE1hlYILrSqpqh.atlasv1.ARjZuyzl33F71WR55s6ln"
        ));
        assert!(!is_identifier_like("s.ZC9Ecf4M5g9o34Q6RkzGsj0z"));
        assert!(is_comparison("default_rc==0"));
        assert!(!is_comparison("t1.9euFAKE==.FAKEfake0123"));
        assert!(is_version_or_number("6089714274206600"));
        assert!(!is_version_or_number("25130226450292771022773629319832"));
        assert!(name_is_descriptive("token_type"));
        assert!(names_a_password("DB_PASS") && names_a_password("ppwszPassword"));
        assert!(!names_a_password("GpuRenderPassColorAttachment"));
        for code in [
            "BCryptGenerateKeyPairFn",
            "CFStringTokenizerRef",
            "DISPID_SDKCreateKey",
        ] {
            assert!(is_identifier_like(code), "{code}");
        }
        for random in ["yqDVtkqPECriaLRi", "HXe8DGg1iJd2AopzyxkFB7F2"] {
            assert!(!is_identifier_like(random), "{random}");
        }
        assert!(is_version_or_number("-2147483648i32") && is_version_or_number("1048576u32"));
        assert!(is_version_or_number("0x28acf509"));
        assert!(name_is_descriptive("clientSecretName"));
        assert!(!name_is_descriptive("api_key"));
        assert!(looks_random("Zq8FAKEsecret0123"));
        assert!(!looks_random("bearer"));
    }
}
