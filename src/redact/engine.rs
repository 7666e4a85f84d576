//! The scan: one Aho-Corasick pass finds every rule keyword and identity
//! term; each rule's regex then runs only in small windows around its own
//! keyword hits; the personal-data scanners make one cheap pass of their
//! own. Findings are then checked against the keep-list, overlaps resolved,
//! and placeholders put in.
//!
//! Running regexes only near keywords is what makes the engine fast: most
//! text contains no keyword of most rules, so most regexes never run.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::{Regex, RegexBuilder};

use super::command_rules;
use super::identity::{Identity, IdentityKind};
use super::keep;
use super::placeholders::Placeholders;
use super::rules::{Check, Rule, RULES};
use super::{pii, seeds, Category, Finding, RedactError, Redacted};

/// How far (bytes) a window reaches either side of a keyword on one line.
/// Long enough for a 40-byte name, an operator and a 512-byte value; short
/// enough that a 10 MB minified line does not make the scan quadratic.
const LINE_REACH: usize = 768;

/// The longest value a rule may report. Rule regexes use unbounded
/// repetitions (a bounded `{10,512}` compiles to hundreds of states and
/// slows every search); the bound is enforced here instead. Key blocks are
/// exempt: they are long by nature.
const MAX_VALUE: usize = 4096;

struct Compiled {
    rule: &'static Rule,
    re: Regex,
    /// An assignment rule (a `name` group and a non-format check): its
    /// keyword hits must pass [`assignment_follows`] first.
    assignment: bool,
    /// A literal the regex cannot match without, from [`NEEDS`].
    needs: Option<&'static [u8]>,
}

/// What an Aho-Corasick pattern stands for.
enum Target {
    /// A keyword of these rules (indices into `Redactor::rules`).
    Rules(Vec<usize>),
    Identity(IdentityKind),
    /// A trigger of the command-line rules: a program name of their table
    /// (`whole`: only as a word of its own) or a secret-name fragment. The
    /// line around it is read as a command.
    Command {
        whole: bool,
    },
}

/// A compiled rule set plus an identity. Build it once per export run; it
/// is immutable and can be shared across threads.
pub struct Redactor {
    rules: Vec<Compiled>,
    /// Rules without keywords: their regex scans the whole text.
    whole_text: Vec<usize>,
    ac: AhoCorasick,
    targets: Vec<Target>,
    pii: bool,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("rules", &self.rules.len())
            .field("patterns", &self.targets.len())
            .finish_non_exhaustive()
    }
}

/// The rule table's `\b`, `\w`, `\s` and `\d` mean their ASCII versions.
/// Unicode classes are huge (`\w` alone is hundreds of ranges) and make the
/// lazy DFA give up and fall back to the much slower PikeVM; secrets are
/// ASCII anyway.
fn ascii_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut in_class = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push(c);
                    break;
                };
                let ascii = match n {
                    'w' => Some("0-9A-Za-z_"),
                    's' => Some("\\t\\n\\x0B\\x0C\\r "),
                    'd' => Some("0-9"),
                    _ => None,
                };
                match (n, ascii, in_class) {
                    ('b', _, false) => out.push_str("(?-u:\\b)"),
                    (_, Some(a), true) => out.push_str(a),
                    (_, Some(a), false) => {
                        out.push('[');
                        out.push_str(a);
                        out.push(']');
                    }
                    _ => {
                        out.push(c);
                        out.push(n);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A `]` or `^]` right after the opening bracket is literal.
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap_or('^'));
                }
                if chars.peek() == Some(&']') {
                    out.push(chars.next().unwrap_or(']'));
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

impl Redactor {
    /// The full rule table and personal-data scanners, plus `identity`.
    pub fn new(identity: &Identity) -> Result<Redactor, RedactError> {
        Redactor::with_rules(RULES, identity, true)
    }

    /// A redactor over a chosen subset of rules (tests, or a rule's vectors).
    pub fn with_rules(
        rules: &'static [Rule],
        identity: &Identity,
        pii: bool,
    ) -> Result<Redactor, RedactError> {
        let mut compiled = Vec::with_capacity(rules.len());
        let mut patterns: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut whole_text = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            // A roomy lazy-DFA cache: with the default, the assignment rules'
            // automata are rebuilt over and over on keyword-dense code.
            let re = RegexBuilder::new(&ascii_classes(rule.regex))
                .dfa_size_limit(16 << 20)
                .build()
                .map_err(|e| RedactError::BadRule(format!("{}: {e}", rule.id)))?;
            if rule.keywords.is_empty() {
                whole_text.push(i);
            }
            for kw in rule.keywords {
                let kw = kw.to_ascii_lowercase();
                match patterns.iter().position(|p| *p == kw) {
                    Some(p) => keyword_rules[p].push(i),
                    None => {
                        patterns.push(kw);
                        keyword_rules.push(vec![i]);
                    }
                }
            }
            let assignment =
                rule.check != Check::Format && re.capture_names().any(|n| n == Some("name"));
            let needs = NEEDS.iter().find(|(id, _)| *id == rule.id).map(|n| n.1);
            compiled.push(Compiled {
                rule,
                re,
                assignment,
                needs,
            });
        }
        let mut targets: Vec<Target> = keyword_rules.into_iter().map(Target::Rules).collect();
        for (kind, term) in identity.terms() {
            patterns.push(term.clone());
            targets.push(Target::Identity(*kind));
        }
        for (p, whole) in command_rules::program_triggers()
            .map(|p| (p, true))
            .chain(command_rules::NAME_FRAGMENTS.iter().map(|p| (*p, false)))
        {
            patterns.push(p.to_owned());
            targets.push(Target::Command { whole });
        }
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            // A full DFA: a few hundred patterns of a few bytes make a small
            // one, and it is several times faster than the NFA for the
            // overlapping search every byte goes through.
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .map_err(|e| RedactError::BadRule(format!("keyword automaton: {e}")))?;
        Ok(Redactor {
            rules: compiled,
            whole_text,
            ac,
            targets,
            pii,
        })
    }

    /// The rule table's ids, in order.
    pub fn rule_ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.rules.iter().map(|c| c.rule.id)
    }

    /// Finds everything to redact in `text`: sorted, non-overlapping byte
    /// ranges (overlapping findings are merged into the first one's rule).
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut raw = Vec::new();
        let mut hits: Vec<(usize, usize, usize)> = Vec::new();
        // Starts of lines to read as commands, and whether a program name
        // of the table is on them; consecutive hits on one line are one
        // entry.
        let mut command_lines: Vec<(usize, bool)> = Vec::new();
        let b = text.as_bytes();
        // Line starts are found by scanning back only over what no earlier
        // hit covered: on one long line with a keyword every few bytes, a
        // scan back to the line's start per hit would be quadratic.
        let (mut scanned, mut line_start) = (0usize, 0usize);
        let mut start_of_line = |pos: usize| -> usize {
            if pos >= scanned {
                if let Some(i) = memchr::memrchr(b'\n', &b[scanned..pos]) {
                    line_start = scanned + i + 1;
                }
                scanned = pos;
                line_start
            } else if memchr::memchr(b'\n', &b[pos..scanned]).is_none() {
                line_start
            } else {
                memchr::memrchr(b'\n', &b[..pos]).map_or(0, |i| i + 1)
            }
        };
        for m in self.ac.find_overlapping_iter(text) {
            match &self.targets[m.pattern().as_usize()] {
                Target::Rules(list) => {
                    for &r in list {
                        // Assignment rules only run where the keyword's name
                        // is followed by an operator and a value: most
                        // `key`s in code are `key_map.get(key)`.
                        if self.rules[r].assignment
                            && !assignment_follows(b, m.end(), self.rules[r].rule.check)
                        {
                            continue;
                        }
                        hits.push((r, m.start(), m.end()));
                    }
                }
                Target::Command { whole } => {
                    if *whole && !command_rules::whole_word(b, m.start(), m.end() - m.start()) {
                        continue;
                    }
                    let ls = start_of_line(m.start());
                    match command_lines.last_mut() {
                        Some((last, program)) if *last == ls => *program |= *whole,
                        _ => command_lines.push((ls, *whole)),
                    }
                }
                Target::Identity(kind) => {
                    let glued_before = m.start() > 0 && b[m.start() - 1].is_ascii_alphanumeric();
                    let glued_after = m.end() < b.len() && b[m.end()].is_ascii_alphanumeric();
                    // A home path starts with `/`, so only its end can be
                    // glued (`/home/jdoe2` is someone else's).
                    if !glued_after && (*kind == IdentityKind::Home || !glued_before) {
                        raw.push(Finding {
                            rule: kind.rule(),
                            category: Category::Identity,
                            start: m.start(),
                            end: m.end(),
                        });
                    }
                }
            }
        }
        hits.sort_unstable();
        let mut i = 0;
        while i < hits.len() {
            let r = hits[i].0;
            let mut j = i;
            while j < hits.len() && hits[j].0 == r {
                j += 1;
            }
            self.scan_rule_windows(text, r, &hits[i..j], &mut raw);
            i = j;
        }
        for &r in &self.whole_text {
            self.run_rule(text, r, 0, text.len(), &mut raw);
        }
        // Seed phrases are secrets: they run whether or not personal data
        // is scanned.
        seeds::scan(text, &mut raw);
        command_lines.sort_unstable();
        // One entry per line, a program hit on any of them kept.
        command_lines.dedup_by(|next, kept| {
            let same = next.0 == kept.0;
            if same {
                kept.1 |= next.1;
            }
            same
        });
        for (ls, program) in command_lines {
            let le = memchr::memchr(b'\n', &b[ls..]).map_or(b.len(), |i| ls + i);
            command_rules::scan_line(text, ls, le, program, &mut raw);
        }
        if self.pii {
            pii::scan(text, &mut raw);
        }
        resolve(raw)
    }

    fn scan_rule_windows(
        &self,
        text: &str,
        r: usize,
        hits: &[(usize, usize, usize)],
        out: &mut Vec<Finding>,
    ) {
        let reach = self.rules[r].rule.reach;
        let mut cur: Option<(usize, usize)> = None;
        for &(_, s, e) in hits {
            let ws = window_start(text, s, reach);
            let we = window_end(text, e, reach);
            cur = match cur {
                Some((cs, ce)) if ws <= ce => Some((cs, ce.max(we))),
                Some((cs, ce)) => {
                    self.run_rule(text, r, cs, ce, out);
                    Some((ws, we))
                }
                None => Some((ws, we)),
            };
        }
        if let Some((cs, ce)) = cur {
            self.run_rule(text, r, cs, ce, out);
        }
    }

    /// Whether rule `r`'s regex can match in `text[ws..we]`: a rule whose
    /// keywords are common words (`default`, `machine`) and whose regex
    /// needs another literal runs only where that literal is.
    fn window_may_match(&self, text: &str, r: usize, ws: usize, we: usize) -> bool {
        self.rules[r]
            .needs
            .is_none_or(|lit| memchr::memmem::find(&text.as_bytes()[ws..we], lit).is_some())
    }

    fn run_rule(&self, text: &str, r: usize, ws: usize, we: usize, out: &mut Vec<Finding>) {
        if !self.window_may_match(text, r, ws, we) {
            return;
        }
        let c = &self.rules[r];
        let window = &text[ws..we];
        for caps in c.re.captures_iter(window) {
            let Some(m) = ["s", "u", "h", "k"]
                .iter()
                .find_map(|g| caps.name(g))
                .or_else(|| caps.get(0))
            else {
                continue;
            };
            let ctx = Context {
                name: caps.name("name").map_or("", |n| n.as_str()),
                quoted: caps.name("q").is_some(),
                tag: caps.name("lt").is_some(),
                sep: caps.name("sep").map_or("", |n| n.as_str()),
                before: window.as_bytes()[..m.start()].last().copied(),
            };
            if accept(c.rule, m.as_str(), &ctx) {
                out.push(Finding {
                    rule: c.rule.id,
                    category: Category::Secret,
                    start: ws + m.start(),
                    end: ws + m.end(),
                });
            }
        }
    }

    /// Redacts `text`, numbering placeholders in `book`.
    pub fn redact(&self, text: &str, book: &mut Placeholders) -> Redacted {
        let findings = self.scan(text);
        Redacted {
            text: apply(text, &findings, book),
            findings,
        }
    }

    /// Redacts raw bytes, refusing invalid UTF-8 rather than guessing.
    pub fn redact_bytes(
        &self,
        bytes: &[u8],
        book: &mut Placeholders,
    ) -> Result<Redacted, RedactError> {
        let text = std::str::from_utf8(bytes).map_err(|e| RedactError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        Ok(self.redact(text, book))
    }
}

/// Literals a rule's regex cannot match without (case as in the regex),
/// checked in a window before the regex runs there. The URL rules'
/// keywords (`://`, `https://`) are in every lockfile and README, but
/// their regexes need the `@` that ends a user-info: without this, those
/// two rules ran two thirds of all regex windows.
const NEEDS: &[(&str, &[u8])] = &[
    ("netrc-password", b"password"),
    ("pypirc-password", b"password"),
    ("url-credentials", b"@"),
    ("git-credentials-token", b"@"),
    ("database-connection-url", b"@"),
    ("npmrc-auth", b"="),
];

/// A cheap necessary condition for the assignment rules' regexes at a
/// keyword ending at `at`: the rest of the name, an optional quote, type and
/// spaces, an operator, and then a literal value long enough for the rule.
/// It mirrors the regexes' shape, looser, so it never rejects what they
/// would accept.
fn assignment_follows(b: &[u8], at: usize, check: Check) -> bool {
    let is_name = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-');
    let mut i = at;
    let limit = (at + 24).min(b.len());
    while i < limit && is_name(b[i]) {
        i += 1;
    }
    if i < b.len() && matches!(b[i], b'"' | b'\'' | b'`') {
        i += 1;
    }
    // Spaces, and a type annotation (`: &str`, ` string`) before `=`.
    let limit = (i + 40).min(b.len());
    while i < limit && (matches!(b[i], b' ' | b'\t' | b'&' | b'\'') || b[i].is_ascii_alphabetic()) {
        i += 1;
    }
    let sep_start = i;
    while i < b.len()
        && i - sep_start < 4
        && matches!(b[i], b'=' | b':' | b'>' | b',' | b'?' | b'.' | b'|')
    {
        i += 1;
    }
    if i == sep_start {
        return false;
    }
    while i < b.len() && i - sep_start < 12 && b[i].is_ascii_whitespace() {
        i += 1;
    }
    // `NAME: &str = "..."`: the operator came after a type.
    for ty in ["&'static str", "&str", "String", "string", "str"] {
        if b[i..].starts_with(ty.as_bytes()) {
            let mut j = i + ty.len();
            while j < b.len() && matches!(b[j], b' ' | b'\t') {
                j += 1;
            }
            if b.get(j) == Some(&b'=') {
                i = j + 1;
                while i < b.len() && i - j < 12 && b[i].is_ascii_whitespace() {
                    i += 1;
                }
            }
            break;
        }
    }
    // The value: quoted, or a bare run that ends the expression. References
    // (`${X}`, `{{ x }}`) and calls or indexing (`os.environ[...]`, `f(x)`)
    // are not literals; the keep-list would drop them after the regex.
    let min = if check == Check::Password { 4 } else { 10 };
    let Some(&first) = b.get(i) else {
        return false;
    };
    if matches!(first, b'"' | b'\'' | b'`') {
        let body = &b[i + 1..];
        let len = body
            .iter()
            .take(min + 1)
            .take_while(|&&c| {
                c != first && c != b'\n' && (check == Check::Password || !c.is_ascii_whitespace())
            })
            .count();
        return len >= min && !matches!(body.first(), Some(b'$' | b'{'));
    }
    if matches!(first, b'$' | b'{') {
        return false;
    }
    let bare = |c: u8| match check {
        Check::Password => !c.is_ascii_whitespace() && !b"\"'`,;<>(){}[]".contains(&c),
        _ => c.is_ascii_alphanumeric() || b"_+/=~.!@#$%^*|-".contains(&c),
    };
    let len = b[i..].iter().take_while(|&&c| bare(c)).count();
    len >= min && !matches!(b.get(i + len), Some(b'(' | b'['))
}

/// Replaces each finding's range with its placeholder.
pub fn apply(text: &str, findings: &[Finding], book: &mut Placeholders) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in findings {
        out.push_str(&text[at..f.start]);
        out.push_str(&book.placeholder(f, &text[f.start..f.end]));
        at = f.end;
    }
    out.push_str(&text[at..]);
    out
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// The start of the line holding `pos`, `reach` bytes further back, and never
/// more than [`LINE_REACH`] bytes into one long line.
fn window_start(text: &str, pos: usize, reach: usize) -> usize {
    let b = text.as_bytes();
    let target = pos.saturating_sub(reach);
    let floor = target.saturating_sub(LINE_REACH);
    let start = match memchr::memrchr(b'\n', &b[floor..target]) {
        Some(nl) => floor + nl + 1,
        None => floor,
    };
    floor_boundary(text, start)
}

fn window_end(text: &str, pos: usize, reach: usize) -> usize {
    let b = text.as_bytes();
    let target = (pos + reach).min(b.len());
    let ceil = (target + LINE_REACH).min(b.len());
    let end = match memchr::memchr(b'\n', &b[target..ceil]) {
        Some(nl) => target + nl,
        None => ceil,
    };
    ceil_boundary(text, end)
}

/// What surrounds a candidate value.
struct Context<'a> {
    /// The name it is assigned to, for assignment rules.
    name: &'a str,
    quoted: bool,
    /// The name opened an XML tag (`<apiToken>value`).
    tag: bool,
    sep: &'a str,
    /// The byte before the value.
    before: Option<u8>,
}

/// Credential words that make a name credential-like on their own; the
/// other [`super::rules::CREDENTIAL_WORDS`] are provider names.
const STRONG_WORDS: &[&str] = &[
    "key",
    "token",
    "secret",
    "auth",
    "credential",
    "creds",
    "bearer",
    "access",
    "private",
    "session",
    "cookie",
    "login",
    "pass",
    "pwd",
];

/// Whether a provider name appears in `name` as a word of its own, not as
/// letters inside another word (`rookTable` is not Okta).
fn provider_word(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let b = name.as_bytes();
    super::rules::CREDENTIAL_WORDS
        .iter()
        .filter(|w| !STRONG_WORDS.iter().any(|s| w.contains(s)))
        .any(|w| {
            lower.match_indices(w).any(|(i, _)| {
                let e = i + w.len();
                let start_ok = i == 0
                    || !b[i - 1].is_ascii_alphabetic()
                    || (b[i - 1].is_ascii_lowercase() && b[i].is_ascii_uppercase());
                let end_ok = e == b.len() || !b[e].is_ascii_lowercase();
                start_ok && end_ok
            })
        })
}

/// Whether a regex match really is a secret, by the rule's checks and the
/// keep-list.
fn accept(rule: &Rule, v: &str, ctx: &Context) -> bool {
    if v.is_empty()
        || (v.len() > MAX_VALUE && rule.id != "private-key")
        || rule.allow.iter().any(|a| v.contains(a))
    {
        return false;
    }
    if rule.entropy.is_some_and(|e| keep::entropy(v) < e) {
        return false;
    }
    match rule.check {
        Check::Format => !keep::is_placeholder(v, false) && format_ok(rule.id, v, ctx),
        Check::Assigned => {
            let lower_name = ctx.name.to_ascii_lowercase();
            let strong = STRONG_WORDS.iter().any(|w| lower_name.contains(w));
            !(keep::is_placeholder(v, true)
                || keep::is_reference(v)
                || keep::is_digest(v)
                || keep::is_version_or_number(v)
                || keep::is_identifier_like(v)
                || !keep::looks_random(v)
                || (ctx.sep == ">" && !ctx.tag)
                || (!ctx.quoted && v.starts_with(['&', '*']))
                || keep::is_comparison(v)
                || (!ctx.name.is_empty()
                    && (keep::name_is_descriptive(ctx.name)
                        || (!strong && (!provider_word(ctx.name) || keep::is_hex_hash(v))))))
        }
        Check::Password => {
            !(keep::is_placeholder(v, true)
                || keep::is_reference(v)
                || keep::is_non_value(v)
                || v.contains(['<', '>'])
                || v.starts_with(['{', '['])
                || (!ctx.quoted && v.starts_with(['&', '*']))
                || (!ctx.name.is_empty() && !keep::names_a_password(ctx.name))
                || (!ctx.name.is_empty() && keep::name_is_descriptive(ctx.name))
                || (!ctx.quoted
                    && !ctx.name.is_empty()
                    && (keep::is_identifier_like(v) || keep::is_version_or_number(v)))
                || v.len() < 4)
        }
    }
}

/// Checks of single formats that a regex cannot express.
fn format_ok(id: &str, v: &str, ctx: &Context) -> bool {
    match id {
        // A key block with a real body, not `...` or `anything`.
        "private-key" => {
            let body: usize = v
                .lines()
                .filter(|l| !l.contains("-----"))
                .map(|l| {
                    l.bytes()
                        .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/'))
                        .count()
                })
                .sum();
            let inline = v.contains("\\n") && v.len() > 80;
            body >= 32 || inline
        }
        // Base64 data, not a manifest's words (`Opaque`, `secret/name`).
        "kubernetes-secret-data" => {
            let digit = v.bytes().any(|b| b.is_ascii_digit());
            let upper = v.bytes().any(|b| b.is_ascii_uppercase());
            let lower = v.bytes().any(|b| b.is_ascii_lowercase());
            v.len() >= 12
                && (v.ends_with('=')
                    || (digit && (upper || lower))
                    || (upper && lower && v.contains(['+', '/'])))
        }
        // A vendor prefix inside a file name (`video_box.ico-7a38...png`) is
        // not a token, and a token is never digits alone after its prefix.
        "prefixed-token" => {
            let tail = v.split_once(['_', '-', '.', '~']).map_or(v, |(_, t)| t);
            ctx.before != Some(b'.') && !tail.bytes().all(|b| b.is_ascii_digit() || b == b'_')
        }
        // A known prefix at a non-standard length: random data has a digit
        // somewhere, and a sample's `...TokenHere` or `abc123...klmnopqrstuv`
        // is a placeholder, not a token.
        "known-prefix-long" => {
            v.bytes().any(|b| b.is_ascii_digit()) && !keep::is_placeholder(v, true)
        }
        // The last part of a Slack token is random: not digits alone, not a
        // placeholder (`...AccessTokenHere`).
        "slack-token" => {
            let last = v.rsplit('-').next().unwrap_or("");
            last.bytes().any(|b| b.is_ascii_alphabetic()) && !keep::is_placeholder(last, true)
        }
        _ => true,
    }
}

/// Rules that find a secret by its context rather than its format: when
/// they overlap a format rule, the format rule names the finding.
const CONTEXT_RULES: &[&str] = &[
    "generic-secret",
    "password-assignment",
    "authorization-header",
    "url-credentials",
    "curl-auth",
    "typed-password",
    command_rules::PASSWORD_RULE,
    command_rules::CREDENTIAL_RULE,
];

/// Lower is more specific: secrets by format, then by context, then
/// personal data, then identity.
fn rank(f: &Finding) -> (Category, bool) {
    (f.category, CONTEXT_RULES.contains(&f.rule))
}

/// Sorts findings and merges overlaps: findings that overlap become one
/// covering all of them (so no part of any value is left in clear), named
/// by the most specific of them.
pub(crate) fn resolve(mut raw: Vec<Finding>) -> Vec<Finding> {
    raw.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out: Vec<Finding> = Vec::with_capacity(raw.len());
    for f in raw {
        match out.last_mut() {
            Some(last) if f.start < last.end => {
                last.end = last.end.max(f.end);
                if rank(&f) < rank(last) {
                    last.rule = f.rule;
                    last.category = f.category;
                }
            }
            _ => out.push(f),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_compiles_and_has_vectors() {
        let r = Redactor::new(&Identity::none()).unwrap();
        assert_eq!(r.rule_ids().count(), RULES.len());
        for rule in RULES {
            assert!(
                !rule.tp.is_empty() && !rule.fp.is_empty(),
                "{} lacks vectors",
                rule.id
            );
            assert!(
                rule.keywords.iter().all(|k| *k == k.to_ascii_lowercase()),
                "{}",
                rule.id
            );
        }
        let mut ids: Vec<_> = RULES.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len(), "rule ids are unique");
    }

    /// A rule's `NEEDS` literal is one its regex cannot match without:
    /// each true positive holds it, and none matches once it is replaced.
    #[test]
    fn needed_literals_are_needed() {
        for (id, lit) in NEEDS {
            let rule = RULES.iter().find(|r| r.id == *id).expect("rule exists");
            let re = Regex::new(&ascii_classes(rule.regex)).unwrap();
            let lit = std::str::from_utf8(lit).unwrap();
            for tp in rule.tp {
                assert!(tp.contains(lit), "{id}: {tp:?} lacks {lit:?}");
                for with in [" ", "x", ".", "_", "-"] {
                    let without = tp.replace(lit, with);
                    assert!(!re.is_match(&without), "{id} matches {without:?}");
                }
            }
        }
    }

    /// Every rule's own vectors: each true positive is found by that rule,
    /// and no false positive is found by it.
    #[test]
    fn rule_vectors() {
        let r = Redactor::new(&Identity::none()).unwrap();
        let mut failures = Vec::new();
        for rule in RULES {
            for tp in rule.tp {
                if !r.scan(tp).iter().any(|f| f.rule == rule.id) {
                    failures.push(format!(
                        "{}: missed {tp:?} (found {:?})",
                        rule.id,
                        r.scan(tp)
                    ));
                }
            }
            for fp in rule.fp {
                let found: Vec<_> = r
                    .scan(fp)
                    .into_iter()
                    .filter(|f| f.rule == rule.id)
                    .collect();
                if !found.is_empty() {
                    failures.push(format!("{}: fired on {fp:?}: {found:?}", rule.id));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// `verify` re-scans exports: the redaction of every vector scans clean.
    #[test]
    fn redacted_vectors_scan_clean() {
        let r = Redactor::new(&Identity::none()).unwrap();
        for rule in RULES {
            for text in rule.tp.iter().chain(rule.fp) {
                let once = r.redact(text, &mut Placeholders::new()).text;
                assert_eq!(r.scan(&once), [], "{}: {text:?} -> {once:?}", rule.id);
            }
        }
    }

    #[test]
    fn classes_become_ascii() {
        assert_eq!(
            ascii_classes(r"\b[\w.-]\s+\d"),
            r"(?-u:\b)[0-9A-Za-z_.-][\t\n\x0B\x0C\r ]+[0-9]"
        );
        assert_eq!(
            ascii_classes(r"[^\s'](?P<s>x)\."),
            r"[^\t\n\x0B\x0C\r '](?P<s>x)\."
        );
    }

    #[test]
    fn overlaps_merge_and_contained_findings_vanish() {
        let f = |start, end, category| Finding {
            rule: "x",
            category,
            start,
            end,
        };
        let out = resolve(vec![
            f(5, 9, Category::Identity),
            f(0, 10, Category::Pii),
            f(8, 14, Category::Secret),
            f(20, 22, Category::Pii),
        ]);
        assert_eq!(
            out.iter().map(|f| (f.start, f.end)).collect::<Vec<_>>(),
            [(0, 14), (20, 22)]
        );
    }

    #[test]
    fn windows_stop_at_lines_and_char_boundaries() {
        let t = "ééé\nkey = x\nnext";
        let s = t.find("key").unwrap();
        assert_eq!(
            &t[window_start(t, s, 0)..window_end(t, s + 3, 0)],
            "key = x"
        );
        let long = "é".repeat(2000);
        let ws = window_start(&long, 2000, 0);
        assert!(long.is_char_boundary(ws) && ws > 0);
    }
}
