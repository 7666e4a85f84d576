//! Command-line secret rules: what makes a word of a shell command line a
//! secret by where it stands (`mysql -pHunter2`, `sshpass -p x`,
//! `curl -u user:pw`, `PGPASSWORD=x psql`, `-H 'Authorization: …'`), and
//! the users and hosts it names (`ssh deploy@db-3`, `psql -U jdoe`).
//!
//! One definition for every text path: the redaction engine applies the
//! secrets to any line that reads as a command (typed text, files, plain
//! `candor-export redact`), and the exporter's command anonymizer takes
//! all of [`findings`] (users and hosts too) for its command lines. Which
//! program's flags carry what is a data table, [`PROGRAMS`], with a test
//! vector per row.

use crate::redact::identity::GENERIC_ACCOUNTS;
use crate::redact::keep::{self, is_candor_placeholder};
use crate::redact::{Category, Finding};
use crate::shell::SSH_ARG;

/// The rule of a password found by a command line's shape.
pub const PASSWORD_RULE: &str = "command-password";
/// The rule of a token, key or other credential found by its shape.
pub const CREDENTIAL_RULE: &str = "command-credential";

/// Hosts kept in URLs and `user@host`: public services that name nobody.
pub const PUBLIC_HOSTS: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "0.0.0.0",
    "::1",
    "github.com",
    "api.github.com",
    "raw.githubusercontent.com",
    "objects.githubusercontent.com",
    "gist.github.com",
    "ghcr.io",
    "gitlab.com",
    "bitbucket.org",
    "codeberg.org",
    "crates.io",
    "static.crates.io",
    "index.crates.io",
    "docs.rs",
    "pypi.org",
    "files.pythonhosted.org",
    "registry.npmjs.org",
    "npmjs.com",
    "www.npmjs.com",
    "registry.yarnpkg.com",
    "proxy.golang.org",
    "go.dev",
    "pkg.go.dev",
    "docker.io",
    "registry-1.docker.io",
    "hub.docker.com",
    "quay.io",
    "gcr.io",
    "stackoverflow.com",
    "example.com",
    "example.org",
];

/// User names that are roles, not people: `git@github.com`.
pub(crate) const ROLE_USERS: &[&str] =
    &["git", "oauth2", "x-access-token", "x-oauth-basic", "token"];

// ---------------------------------------------------------------------------
// Lexing

/// One shell word: its text with quotes and escapes removed, and where its
/// bytes sit in the command line, as runs of bytes contiguous in both
/// (`(text offset, line offset)`): a plain word is one run. A vector of
/// one offset per byte made the lexer allocate per byte, which cost more
/// than the rest of the scan.
#[derive(Debug, Clone)]
struct Word {
    text: String,
    /// The first run, kept inline: most words are one run, and a vector
    /// for it was an allocation per word.
    first: Option<(usize, usize)>,
    more: Vec<(usize, usize)>,
}

impl Word {
    fn new() -> Word {
        Word {
            text: String::new(),
            first: None,
            more: Vec::new(),
        }
    }

    /// Appends `s`, which sits at byte `at` of the command line.
    fn push_str(&mut self, s: &str, at: usize) {
        if s.is_empty() {
            return;
        }
        let last = self.more.last().copied().or(self.first);
        let contiguous = last.is_some_and(|(t, l)| l + (self.text.len() - t) == at);
        if !contiguous {
            let run = (self.text.len(), at);
            if self.first.is_none() {
                self.first = Some(run);
            } else {
                self.more.push(run);
            }
        }
        self.text.push_str(s);
    }

    /// The command line's byte offset of `text[i]` (`i < text.len()`).
    fn pos(&self, i: usize) -> usize {
        let (t, l) = match self.more.partition_point(|&(t, _)| t <= i) {
            0 => self.first.unwrap_or((0, 0)),
            r => self.more[r - 1],
        };
        l + (i - t)
    }

    /// The command line's byte range of `text[a..b]` (`a < b`), widened
    /// over a pair of quotes that enclose exactly it.
    fn span(&self, line: &str, a: usize, b: usize) -> (usize, usize) {
        let (mut s, mut e) = (self.pos(a), self.pos(b - 1) + 1);
        let raw = line.as_bytes();
        if s > 0 && matches!(raw[s - 1], b'\'' | b'"') && raw.get(e) == Some(&raw[s - 1]) {
            s -= 1;
            e += 1;
        }
        (s, e)
    }
}

/// The length of a placeholder (`<SECRET:rule#1>`, `<USER#2>`) starting at
/// byte `i` of `s`, if one does.
pub(crate) fn placeholder_len(s: &str, i: usize) -> Option<usize> {
    let rest = &s[i..];
    if !rest.starts_with('<') {
        return None;
    }
    let end = rest.char_indices().take(96).find(|(_, c)| *c == '>')?.0;
    let cand = &rest[..=end];
    (is_candor_placeholder(cand) && !cand[1..].contains('<')).then_some(end + 1)
}

/// Splits a command line into simple commands (at `;`, `|`, `&`, `(`, `)`,
/// backquotes, `$(` and newlines), each a list of words. Redirections end
/// a word; their target is the next word. A `#` starting a word starts a
/// comment.
fn lex(line: &str) -> Vec<Vec<Word>> {
    let mut commands: Vec<Vec<Word>> = Vec::new();
    let mut words: Vec<Word> = Vec::new();
    let mut cur: Option<Word> = None;
    fn push(cur: &mut Option<Word>, c: char, at: usize) {
        let mut buf = [0; 4];
        cur.get_or_insert_with(Word::new)
            .push_str(c.encode_utf8(&mut buf), at);
    }
    fn end_word(cur: &mut Option<Word>, words: &mut Vec<Word>) {
        if let Some(w) = cur.take() {
            words.push(w);
        }
    }
    fn end_command(cur: &mut Option<Word>, words: &mut Vec<Word>, commands: &mut Vec<Vec<Word>>) {
        end_word(cur, words);
        if !words.is_empty() {
            commands.push(std::mem::take(words));
        }
    }
    let mut it = line.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        match c {
            c if c.is_whitespace() => {
                if c == '\n' {
                    end_command(&mut cur, &mut words, &mut commands);
                } else {
                    end_word(&mut cur, &mut words);
                }
            }
            // `-pTr0ub4dor&3`: an `&` inside a word, with no space on either
            // side, is what a password typed unquoted looks like; the shell
            // would cut it, but the whole of it is what was typed. Reading
            // it as one word errs towards masking.
            '&' if cur.is_some()
                && it.peek().is_some_and(|(_, d)| {
                    d.is_ascii_alphanumeric() || matches!(d, '!' | '#' | '%' | '*' | '@' | '^')
                }) =>
            {
                push(&mut cur, c, i)
            }
            ';' | '&' | '|' | '(' | ')' | '`' => end_command(&mut cur, &mut words, &mut commands),
            '$' if it.peek().is_some_and(|(_, d)| *d == '(') => {
                it.next();
                end_command(&mut cur, &mut words, &mut commands);
            }
            '<' | '>' => match placeholder_len(line, i) {
                Some(len) => {
                    push(&mut cur, '<', i);
                    while let Some(&(j, d)) = it.peek() {
                        if j >= i + len {
                            break;
                        }
                        push(&mut cur, d, j);
                        it.next();
                    }
                }
                None => end_word(&mut cur, &mut words),
            },
            '#' if cur.is_none() => {
                // A comment runs to the end of its line.
                for (_, d) in it.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
                end_command(&mut cur, &mut words, &mut commands);
            }
            '\\' => {
                if let Some((j, d)) = it.next() {
                    if d != '\n' {
                        push(&mut cur, d, j);
                    }
                }
            }
            '\'' => {
                cur.get_or_insert_with(Word::new);
                for (j, d) in it.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    push(&mut cur, d, j);
                }
            }
            '"' => {
                cur.get_or_insert_with(Word::new);
                while let Some((j, d)) = it.next() {
                    match d {
                        '"' => break,
                        '\\' if it
                            .peek()
                            .is_some_and(|(_, e)| matches!(e, '"' | '\\' | '$' | '`')) =>
                        {
                            if let Some((k, e)) = it.next() {
                                push(&mut cur, e, k);
                            }
                        }
                        _ => push(&mut cur, d, j),
                    }
                }
            }
            _ => {
                // The plain bytes after it in one go: pushing them one by
                // one was most of the lexer's time.
                let mut end = i + c.len_utf8();
                while let Some(&(j, d)) = it.peek() {
                    if !d.is_ascii_graphic()
                        || matches!(
                            d,
                            ';' | '&' | '|' | '(' | ')' | '`' | '$' | '<' | '>' | '\\' | '\'' | '"'
                        )
                    {
                        break;
                    }
                    end = j + 1;
                    it.next();
                }
                cur.get_or_insert_with(Word::new).push_str(&line[i..end], i);
            }
        }
    }
    end_command(&mut cur, &mut words, &mut commands);
    commands
}

// ---------------------------------------------------------------------------
// Names that make a value sensitive

fn parts(name: &str) -> Vec<String> {
    name.trim_start_matches('-')
        .to_ascii_lowercase()
        .split(['-', '_', '.', ' ', '/', ':'])
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parts of a name that say its value is not the secret itself but where
/// to find one, or something about it.
const NOT_A_VALUE: &[&str] = &[
    "file", "path", "stdin", "env", "prompt", "cmd", "command", "length", "policy", "hash",
    "reset", "expiry", "expires", "ttl", "name", "id", "type", "url", "dir", "size", "count",
    "endpoint", "header", "source", "store", "helper", "manager", "mode", "method", "format",
    "required", "min", "max", "strength", "hint", "timeout", "fd", "program", "prefix",
];

/// Whether a value assigned to `name` (an environment variable, a
/// `--flag=`, a `key=` in a list, a header, a query parameter) is a secret.
/// `key_counts`: a bare `KEY` part counts (environment variables and
/// headers: `STRIPE_KEY`); for flags it does not (`--key` names a file or
/// a lookup key more often than not).
pub(crate) fn secret_name(name: &str, key_counts: bool) -> Option<&'static str> {
    // Every name the parts below accept holds one of these: most words of
    // a command line hold none, and are turned away without splitting.
    const MARKS: &[&[u8]] = &[
        b"pass",
        b"pw",
        b"token",
        b"secret",
        b"key",
        b"credential",
        b"auth",
        b"bearer",
        b"cookie",
        b"signature",
        b"sessionid",
    ];
    let lower = name.as_bytes();
    if !MARKS
        .iter()
        .any(|m| lower.windows(m.len()).any(|w| w.eq_ignore_ascii_case(m)))
    {
        return None;
    }
    let p = parts(name);
    if p.is_empty()
        || matches!(
            p[0].as_str(),
            "no" | "ask" | "skip" | "disable" | "without" | "use" | "show" | "print" | "read"
        )
        || p.iter().any(|x| NOT_A_VALUE.contains(&x.as_str()))
    {
        return None;
    }
    let password = p.iter().any(|x| {
        x.contains("password")
            || x.contains("passwd")
            || x.contains("passphrase")
            || matches!(
                x.as_str(),
                "pass"
                    | "pw"
                    | "pwd"
                    | "storepass"
                    | "keypass"
                    | "srcstorepass"
                    | "deststorepass"
                    | "srckeypass"
                    | "destkeypass"
                    | "passin"
                    | "passout"
                    | "rpcpass"
                    | "dbpass"
            )
    });
    if password {
        return Some(PASSWORD_RULE);
    }
    let pair = |a: &str, b: &str| p.windows(2).any(|w| w[0] == a && w[1] == b);
    let credential = p.iter().any(|x| {
        x == "token"
            || x.ends_with("token")
            || x == "secret"
            || x.ends_with("secret")
            || x.contains("apikey")
            || x.contains("accesskey")
            || x.contains("secretkey")
            || x.contains("privatekey")
            || x.contains("credential")
            || matches!(
                x.as_str(),
                "auth" | "authorization" | "bearer" | "cookie" | "signature" | "sessionid"
            )
    }) || pair("api", "key")
        || pair("access", "key")
        || pair("secret", "key")
        || pair("private", "key")
        || pair("auth", "key")
        || (key_counts && p.last().is_some_and(|x| x == "key"));
    credential.then_some(CREDENTIAL_RULE)
}

/// Flags whose next word is a secret (`--password X`, `-storepass X`):
/// stricter than [`secret_name`], since a flag without `=` may take no
/// value at all.
fn secret_flag(flag: &str) -> Option<&'static str> {
    let name = flag.trim_start_matches('-').to_ascii_lowercase();
    if !flag.starts_with('-') || name.len() < 2 {
        return None;
    }
    let rule = secret_name(&name, false)?;
    // Only names that are the secret's own: `--token X`, not `--tokenizer X`.
    let last = parts(&name).pop().unwrap_or_default();
    let ok = matches!(
        last.as_str(),
        "password"
            | "passwd"
            | "pass"
            | "passphrase"
            | "pw"
            | "pwd"
            | "token"
            | "secret"
            | "apikey"
            | "key"
            | "bearer"
            | "cookie"
            | "auth"
            | "storepass"
            | "keypass"
            | "passin"
            | "passout"
            | "credentials"
            | "credential"
    ) || last.ends_with("password")
        || last.ends_with("token")
        || last.ends_with("secret");
    ok.then_some(rule)
}

fn user_flag(flag: &str) -> bool {
    let p = parts(flag);
    p.last()
        .is_some_and(|x| matches!(x.as_str(), "user" | "username" | "login" | "usr"))
        && !p
            .iter()
            .any(|x| NOT_A_VALUE.contains(&x.as_str()) || x == "agent")
}

fn host_flag(flag: &str) -> bool {
    let p = parts(flag);
    p.last()
        .is_some_and(|x| matches!(x.as_str(), "host" | "hostname" | "server"))
        && !p.iter().any(|x| NOT_A_VALUE.contains(&x.as_str()))
}

// ---------------------------------------------------------------------------
// Pass 1: findings

/// The schemes of an `Authorization` header, kept before its credentials.
const AUTH_SCHEMES: &[&str] = &[
    "basic",
    "bearer",
    "digest",
    "token",
    "negotiate",
    "ntlm",
    "bot",
    "oauth",
    "apikey",
    "key",
    "jwt",
    "hoba",
    "mutual",
    "aws4-hmac-sha256",
];

struct Scan<'a> {
    line: &'a str,
    out: Vec<Finding>,
}

/// A value that is not a literal: empty, a variable, a substitution, a
/// placeholder already, or a prompt.
fn not_literal(v: &str) -> bool {
    let v = v.trim();
    v.is_empty()
        || v.starts_with('$')
        || v.starts_with("<(")
        || v == "-"
        || is_candor_placeholder(v)
}

impl Scan<'_> {
    fn add(&mut self, w: &Word, a: usize, b: usize, rule: &'static str, category: Category) {
        if a >= b || b > w.text.len() || not_literal(&w.text[a..b]) {
            return;
        }
        let (start, end) = w.span(self.line, a, b);
        self.out.push(Finding {
            rule,
            category,
            start,
            end,
        });
    }

    fn secret(&mut self, w: &Word, a: usize, rule: &'static str) {
        self.add(w, a, w.text.len(), rule, Category::Secret);
    }

    fn user(&mut self, w: &Word, a: usize, b: usize) {
        let v = &w.text[a.min(b)..b];
        if GENERIC_ACCOUNTS
            .iter()
            .chain(ROLE_USERS)
            .any(|u| u.eq_ignore_ascii_case(v))
        {
            return;
        }
        self.add(w, a, b, "username", Category::Identity);
    }

    fn host(&mut self, w: &Word, a: usize, b: usize) {
        if is_public_host(&w.text[a.min(b)..b]) {
            return;
        }
        self.add(w, a, b, "hostname", Category::Identity);
    }

    /// `user:password` (curl `-u`, URL user info) or `user%password`
    /// (smbclient).
    fn user_pass(&mut self, w: &Word, a: usize, sep: char) {
        // The separator outside placeholders: `<SECRET:rule#1>` is no
        // `user:password`.
        let t = &w.text[a..];
        let mut i = 0;
        let mut found = None;
        while let Some(c) = t[i..].chars().next() {
            if let Some(len) = placeholder_len(t, i) {
                i += len;
            } else if c == sep {
                found = Some(i);
                break;
            } else {
                i += c.len_utf8();
            }
        }
        match found {
            Some(i) => {
                self.user(w, a, a + i);
                self.secret(w, a + i + 1, PASSWORD_RULE);
            }
            None => self.user(w, a, w.text.len()),
        }
    }

    /// `user@host`, with an optional `:path` after it.
    fn user_at_host(&mut self, w: &Word, a: usize) {
        let t = &w.text[a..];
        let Some(at) = t.find('@') else {
            return;
        };
        let host_end = t[at + 1..].find(':').map_or(t.len(), |i| at + 1 + i);
        self.user(w, a, a + at);
        self.host(w, a + at + 1, a + host_end);
    }

    /// A header `Name: value` whose name says its value is a credential;
    /// the scheme word of an `Authorization` value stays.
    fn header(&mut self, w: &Word, a: usize) {
        let t = &w.text[a..];
        let Some(colon) = t.find(':') else {
            return;
        };
        let name = t[..colon].trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            || t[colon..].starts_with("://")
            || secret_name(name, true).is_none()
        {
            return;
        }
        let rest = &t[colon + 1..];
        let mut v = colon + 1 + (rest.len() - rest.trim_start().len());
        let value = &t[v..];
        if let Some(sp) = value.find(' ') {
            let scheme = value[..sp].to_ascii_lowercase();
            if AUTH_SCHEMES.contains(&scheme.as_str()) {
                let after = &value[sp..];
                v += sp + (after.len() - after.trim_start().len());
            }
        }
        self.secret(w, a + v, CREDENTIAL_RULE);
    }

    /// `key=value` pairs in a word (`PGPASSWORD=x`, `password=x,user=y`,
    /// `--from-literal=token=x`), split at commas.
    fn pairs(&mut self, w: &Word, a: usize, key_counts: bool) {
        let t = &w.text[a..];
        if t.contains("://") {
            return;
        }
        let mut at = 0;
        for piece in t.split(',') {
            if let Some(eq) = piece.find('=') {
                let (k, v) = (&piece[..eq], a + at + eq + 1);
                let end = a + at + piece.len();
                if !k.is_empty() && !k.starts_with('-') {
                    if let Some(rule) = secret_name(k, key_counts) {
                        // A single pair takes the rest of the word: a
                        // password may hold a comma.
                        let end = if at == 0 && !t[eq + 1..].contains('=') {
                            w.text.len()
                        } else {
                            end
                        };
                        self.add(w, v, end, rule, Category::Secret);
                    } else if user_flag(k) {
                        self.user(w, v, end);
                    } else if host_flag(k) {
                        self.host(w, v, end);
                    } else if at == 0 {
                        self.header(w, v);
                    }
                }
            }
            at += piece.len() + 1;
        }
    }

    /// User info and sensitive query parameters of URLs in a word.
    fn url(&mut self, w: &Word) {
        let t = &w.text;
        let mut from = 0;
        while let Some(i) = t[from..].find("://") {
            let start = from + i + 3;
            let auth_end = t[start..]
                .find(['/', '?', '#', ' ', '"', '\''])
                .map_or(t.len(), |j| start + j);
            if let Some(at) = t[start..auth_end].rfind('@') {
                let info_end = start + at;
                match t[start..info_end].find(':') {
                    Some(c) => {
                        self.user(w, start, start + c);
                        self.add(w, start + c + 1, info_end, PASSWORD_RULE, Category::Secret);
                    }
                    None => self.user(w, start, info_end),
                }
            }
            let url_end = t[start..]
                .find([' ', '"', '\''])
                .map_or(t.len(), |j| start + j);
            if let Some(q) = t[start..url_end].find('?') {
                let qs = start + q + 1;
                let qe = t[qs..url_end].find('#').map_or(url_end, |j| qs + j);
                let mut at = qs;
                for kv in t[qs..qe].split('&') {
                    if let Some(eq) = kv.find('=') {
                        if let Some(rule) = secret_name(&kv[..eq], true).or_else(|| {
                            matches!(kv[..eq].to_ascii_lowercase().as_str(), "sig" | "key")
                                .then_some(CREDENTIAL_RULE)
                        }) {
                            self.add(w, at + eq + 1, at + kv.len(), rule, Category::Secret);
                        }
                    }
                    at += kv.len() + 1;
                }
            }
            from = url_end.max(start);
        }
    }

    /// `PASSWORD 'x'`, `IDENTIFIED BY 'x'` in SQL given on the command
    /// line (`psql -c`, `mysql -e`).
    fn sql(&mut self, w: &Word) {
        let lower = w.text.to_ascii_lowercase();
        for key in ["password", "identified by"] {
            let mut from = 0;
            while let Some(i) = lower[from..].find(key) {
                let mut j = from + i + key.len();
                from = j;
                let rest = &lower[j..];
                let after = rest.trim_start();
                let after = after.strip_prefix('=').map_or(after, str::trim_start);
                j += rest.len() - after.len();
                if let Some(q) = after.chars().next().filter(|c| matches!(c, '\'' | '"')) {
                    if let Some(end) = lower[j + 1..].find(q) {
                        self.add(w, j + 1, j + 1 + end, PASSWORD_RULE, Category::Secret);
                        from = j + 1 + end;
                    }
                }
            }
        }
    }

    /// What any word says by its shape alone.
    fn word(&mut self, w: &Word) {
        let t = &w.text;
        if t.contains(|c: char| c.is_whitespace()) {
            self.sql(w);
        }
        if t.contains("://") {
            self.url(w);
            return;
        }
        if let Some(flag) = t.strip_prefix("--").or_else(|| t.strip_prefix('-')) {
            if let Some(eq) = flag.find('=') {
                let name = &flag[..eq];
                let v = t.len() - flag.len() + eq + 1;
                if let Some(rule) = secret_name(name, false) {
                    self.add_prefixed_secret(w, v, rule);
                } else if user_flag(name) {
                    // `--user=alice:pw`: the password is no part of the name.
                    self.user_pass(w, v, ':');
                } else if host_flag(name) {
                    self.host(w, v, t.len());
                } else {
                    self.pairs(w, v, true);
                }
            }
            return;
        }
        if header_shaped(t) {
            self.header(w, 0);
        } else if t.contains('=') {
            self.pairs(w, 0, true);
        }
    }

    /// A secret value, but `pass:x` (openssl) names the secret after its
    /// prefix, and `env:`/`file:`/`fd:` name where it is.
    fn add_prefixed_secret(&mut self, w: &Word, v: usize, rule: &'static str) {
        let t = &w.text[v..];
        if let Some(rest) = t.strip_prefix("pass:") {
            self.secret(w, w.text.len() - rest.len(), rule);
        } else if !["env:", "file:", "fd:", "stdin"]
            .iter()
            .any(|p| t.starts_with(p))
        {
            self.secret(w, v, rule);
        }
    }

    /// One simple command; `depth` counts the commands it is nested in
    /// (`sh -c '…'`, `docker exec c …`).
    fn command(&mut self, words: &[Word], stdin_secret: bool, depth: usize) {
        for w in words {
            self.word(w);
        }
        // `<<< word`: a here-string is the command's standard input, not
        // one of its words.
        if words.iter().any(|w| self.here_string(w)) {
            if reads_password_cmd(words) {
                for w in words {
                    if self.here_string(w) {
                        self.secret(w, 0, PASSWORD_RULE);
                    }
                }
            }
            let rest: Vec<Word> = words
                .iter()
                .filter(|w| !self.here_string(w))
                .cloned()
                .collect();
            if rest.is_empty() {
                return;
            }
            return self.command_words(&rest, stdin_secret, depth);
        }
        self.command_words(words, stdin_secret, depth);
    }

    /// Whether `w` follows `<<<` in the line.
    fn here_string(&self, w: &Word) -> bool {
        if w.text.is_empty() {
            return false;
        }
        let s = w.pos(0);
        let mut b = &self.line.as_bytes()[..s];
        if let [rest @ .., b'\'' | b'"'] = b {
            b = rest;
        }
        while let [rest @ .., c] = b {
            if !c.is_ascii_whitespace() {
                break;
            }
            b = rest;
        }
        b.ends_with(b"<<<")
    }

    /// One simple command, here-strings taken out.
    fn command_words(&mut self, words: &[Word], stdin_secret: bool, depth: usize) {
        // Assignments and wrappers before the program.
        let mut i = 0;
        loop {
            while i < words.len() && is_assignment(&words[i].text) {
                i += 1;
            }
            let Some(w) = words.get(i) else {
                return;
            };
            let name = basename(&w.text);
            if name == "setenv" {
                if let (Some(k), Some(v)) = (words.get(i + 1), words.get(i + 2)) {
                    if let Some(rule) = secret_name(&k.text, true) {
                        self.secret(v, 0, rule);
                    }
                }
                return;
            }
            // Wrappers come from the shell reader's table; those whose
            // command is a string or follows a host (`sh -c`, `ssh h`,
            // `watch '…'`) are read by `nested`, which relexes strings.
            let Some(wr) = crate::shell::wrapper(name)
                .filter(|wr| wr.runs_argv && !READ_BY_NESTED.contains(&wr.name))
            else {
                break;
            };
            let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
            let next = crate::shell::skip_wrapper(wr, &texts, i);
            if matches!(name, "sudo" | "doas") {
                // Whose account and which host: `-p` is a prompt, not a secret.
                for j in i + 1..next.min(words.len()) {
                    if let Some(v) = words.get(j + 1).filter(|_| j + 1 < next) {
                        match words[j].text.as_str() {
                            "-h" | "--host" => self.host(v, 0, v.text.len()),
                            "-u" | "-g" | "-U" | "--user" | "--group" | "--other-user" => {
                                self.user(v, 0, v.text.len())
                            }
                            _ => {}
                        }
                    }
                }
            }
            i = next;
        }
        let prog = basename(&words[i].text).to_owned();
        let args = &words[i + 1..];
        self.program(&prog, args, stdin_secret);
        if depth < MAX_NESTING {
            self.nested(&prog, args, stdin_secret, depth + 1);
        }
    }

    /// The command another one runs: the string of `sh -c`, `eval` and an
    /// ssh remote command (lexed again), and the words after a wrapper
    /// (`docker exec c mysql …`, `kubectl exec p -- …`, `watch -n 5 …`,
    /// `sshpass -p x ssh …`), scanned as a command of their own.
    fn nested(&mut self, prog: &str, args: &[Word], stdin_secret: bool, depth: usize) {
        let rest: &[Word] = match prog {
            "sh" | "bash" | "zsh" | "dash" | "ksh" | "mksh" | "fish" | "su" | "runuser" => {
                let c = args.iter().position(|w| {
                    w.text == "-c"
                        || w.text == "--command"
                        || (w.text.starts_with('-')
                            && !w.text.starts_with("--")
                            && w.text[1..].bytes().all(|b| b.is_ascii_alphabetic())
                            && w.text.contains('c'))
                });
                if let Some(s) = c.and_then(|c| args.get(c + 1)) {
                    self.relex(s, stdin_secret, depth);
                }
                return;
            }
            "eval" => args,
            "ssh" | "mosh" | "autossh" | "rsh" => {
                let mut skip = false;
                let mut host = None;
                for (j, w) in args.iter().enumerate() {
                    if skip {
                        skip = false;
                    } else if w.text.starts_with('-') {
                        skip = SSH_ARG.contains(&w.text.as_str());
                    } else {
                        host = Some(j);
                        break;
                    }
                }
                match host {
                    Some(h) => &args[h + 1..],
                    None => return,
                }
            }
            "docker" | "podman" | "nerdctl" | "kubectl" | "oc" | "watch" | "sshpass" | "flock"
            | "chroot" | "nsenter" | "parallel" | "firejail" | "strace" | "ltrace" | "gdb"
            | "valgrind" | "torsocks" | "proxychains" | "proxychains4" | "tsocks" | "entr"
            | "retry" | "doppler" | "op" | "aws-vault" | "dotenv" | "npx" | "pnpx" | "bunx"
            | "uvx" | "pipx" | "poetry" | "pipenv" | "uv" | "direnv" | "nix-shell" => {
                match args.iter().position(|w| w.text == "--") {
                    Some(j) => &args[j + 1..],
                    None => match args.iter().position(|w| nested_program(basename(&w.text))) {
                        Some(j) => &args[j..],
                        None => return,
                    },
                }
            }
            _ => return,
        };
        if rest.is_empty() {
            return;
        }
        // A quoted command: `watch 'mysql -p…'`, `ssh h "mysql -p…"`.
        for w in rest {
            if w.text
                .contains(|c: char| c.is_whitespace() || matches!(c, ';' | '|' | '&'))
            {
                self.relex(w, stdin_secret, depth);
            }
        }
        self.command(rest, stdin_secret, depth);
    }

    /// A word that is a command line of its own, lexed and scanned again;
    /// what it finds is mapped back onto the line.
    fn relex(&mut self, w: &Word, stdin_secret: bool, depth: usize) {
        let mut commands = lex(&w.text);
        for words in &mut commands {
            for inner in words.iter_mut() {
                // Byte by byte: the outer word's runs may split an inner one.
                let mut mapped = Word::new();
                let mut buf = [0; 4];
                for (i, c) in inner.text.char_indices() {
                    mapped.push_str(c.encode_utf8(&mut buf), w.pos(inner.pos(i)));
                }
                *inner = mapped;
            }
        }
        let stdin_secret = stdin_secret || line_reads_password(&w.text, &commands);
        for words in &commands {
            self.command(words, stdin_secret, depth);
        }
    }

    fn program(&mut self, prog: &str, args: &[Word], stdin_secret: bool) {
        let has = |s: &str| args.iter().any(|w| w.text == s);
        // Spaced `--password X` for every program.
        for (j, w) in args.iter().enumerate() {
            if w.text.contains('=') {
                continue;
            }
            if let (Some(rule), Some(v)) = (secret_flag(&w.text), args.get(j + 1)) {
                if !v.text.starts_with('-') || v.text.len() == 1 {
                    self.add_prefixed_secret(v, 0, rule);
                }
            }
        }
        // Short flags: what their value is, and how it is given.
        // The program's row(s) of the table: what its flags carry.
        for row in rows_of(prog)
            .iter()
            .map(|&r| &PROGRAMS[r])
            .filter(|r| r.when.is_none_or(has))
        {
            self.special(row.special, args, stdin_secret);
            for (j, w) in args.iter().enumerate() {
                let t = w.text.as_str();
                for &(flag, kind, form) in row.short {
                    let glued = t.len() > flag.len() && t.starts_with(flag);
                    if t == flag && form != Form::Glued {
                        if let Some(v) = args.get(j + 1) {
                            self.value(v, 0, kind);
                        }
                    } else if glued
                        && (form != Form::Spaced || matches!(kind, Kind::User | Kind::Host))
                    {
                        // `-pX`, and `-uroot`, `-hdb.local`: glued values.
                        self.value(w, flag.len(), kind);
                    }
                }
                for &(flag, kind) in row.long {
                    if t == flag {
                        if let Some(v) = args.get(j + 1) {
                            self.value(v, 0, kind);
                        }
                    } else if let Some(v) = t.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
                        self.value(w, t.len() - v.len(), kind);
                    }
                }
            }
        }
        self.config(args);
    }

    /// The rows whose secret is not a flag's value.
    fn special(&mut self, special: Special, args: &[Word], stdin_secret: bool) {
        match special {
            Special::None => {}
            Special::Remote(prog) => self.remote(prog, args),
            Special::HtpasswdBatch => {
                // With -b the password is the last word.
                let batch = args.iter().any(|w| {
                    w.text.starts_with('-') && !w.text.starts_with("--") && w.text.contains('b')
                });
                let positional: Vec<&Word> =
                    args.iter().filter(|w| !w.text.starts_with('-')).collect();
                if batch && positional.len() >= 2 {
                    if let Some(w) = positional.last() {
                        self.secret(w, 0, PASSWORD_RULE);
                    }
                }
            }
            Special::TokenAfterLogin { allow_pairs } => {
                if let Some(w) = args
                    .iter()
                    .skip_while(|w| w.text != "login")
                    .skip(1)
                    .find(|w| !w.text.starts_with('-') && (allow_pairs || !w.text.contains('=')))
                {
                    self.secret(w, 0, CREDENTIAL_RULE);
                }
            }
            Special::FromLiteral => {
                for (j, w) in args.iter().enumerate() {
                    let (v, a) = if let Some(v) = w.text.strip_prefix("--from-literal=") {
                        (v, w.text.len() - v.len())
                    } else if w.text == "--from-literal" {
                        if let Some(eq) = args.get(j + 1).and_then(|n| n.text.find('=')) {
                            self.secret(&args[j + 1], eq + 1, CREDENTIAL_RULE);
                        }
                        continue;
                    } else {
                        continue;
                    };
                    if let Some(eq) = v.find('=') {
                        self.secret(w, a + eq + 1, CREDENTIAL_RULE);
                    }
                }
            }
            Special::PrintsIntoReader => {
                if stdin_secret {
                    for w in args.iter().filter(|w| !w.text.starts_with('-')) {
                        self.secret(w, 0, PASSWORD_RULE);
                    }
                }
            }
        }
    }

    fn value(&mut self, w: &Word, a: usize, kind: Kind) {
        if a >= w.text.len() || (a == 0 && w.text.starts_with('-') && w.text.len() > 1) {
            return;
        }
        match kind {
            Kind::Password => self.secret(w, a, PASSWORD_RULE),
            Kind::User => self.user(w, a, w.text.len()),
            Kind::Host => self.host(w, a, w.text.len()),
            Kind::UserPass => self.user_pass(w, a, ':'),
            Kind::UserPercent => self.user_pass(w, a, '%'),
            Kind::UserComma => self.user_pass(w, a, ','),
            Kind::Cookie => {
                // `-b 'session=abc'`; without `=` it names a cookie file.
                if w.text[a..].contains('=') {
                    self.secret(w, a, CREDENTIAL_RULE);
                }
            }
            Kind::UserHost => {
                let mut off = a;
                let parts: Vec<String> = w.text[a..].split(',').map(str::to_owned).collect();
                for part in parts {
                    if part.contains('@') {
                        // Only this part: the scan stops at its end.
                        let at = part.find('@').unwrap_or(0);
                        let host_end = part.find(':').unwrap_or(part.len()).max(at + 1);
                        self.user(w, off, off + at);
                        self.host(w, off + at + 1, off + host_end);
                    } else {
                        let end = part.find(':').unwrap_or(part.len());
                        self.host(w, off, off + end);
                    }
                    off += part.len() + 1;
                }
            }
        }
    }

    /// `… config [set] KEY VALUE…` (git, npm, aws configure, poetry…).
    fn config(&mut self, args: &[Word]) {
        let Some(at) = args
            .iter()
            .take(3)
            .position(|w| matches!(w.text.as_str(), "config" | "configure"))
        else {
            return;
        };
        let rest: Vec<&Word> = args[at + 1..]
            .iter()
            .filter(|w| !w.text.starts_with('-'))
            .collect();
        let rest = match rest.first() {
            Some(w) if w.text == "set" => &rest[1..],
            _ => &rest[..],
        };
        let Some((key, values)) = rest.split_first() else {
            return;
        };
        let k = key.text.to_ascii_lowercase();
        if k == "user.name" {
            for v in values {
                self.add(v, 0, v.text.len(), "full-name", Category::Identity);
            }
        } else if k.starts_with("http-basic.") {
            if let Some(u) = values.first() {
                self.user(u, 0, u.text.len());
            }
            if let Some(p) = values.get(1) {
                self.secret(p, 0, PASSWORD_RULE);
            }
        } else if let Some(rule) = secret_name(&key.text, true) {
            if !key.text.contains('=') {
                for v in values {
                    self.secret(v, 0, rule);
                }
            }
        }
    }

    /// The remote side of ssh-like programs: `user@host[:path]`, a bare
    /// `host:path` (scp, rsync), or ssh's first operand.
    fn remote(&mut self, prog: &str, args: &[Word]) {
        let mut first = true;
        let mut skip = false;
        for w in args {
            let t = w.text.as_str();
            if skip {
                skip = false;
                continue;
            }
            if t.starts_with('-') {
                // autossh's `-M port` comes before ssh's own options.
                skip = (SSH_ARG.contains(&t) || (prog == "autossh" && t == "-M"))
                    && !prog.starts_with("rsync");
                continue;
            }
            if t.contains('@') && !t.contains("://") {
                self.user_at_host(w, 0);
            } else if let Some(c) = t.find(':') {
                if c > 0 && !t[..c].contains('/') && !t.contains("://") {
                    self.host(w, 0, c);
                }
            } else if first && matches!(prog, "ssh" | "mosh" | "autossh" | "rsh" | "ssh-copy-id") {
                self.host(w, 0, t.len());
            }
            if first && matches!(prog, "ssh" | "mosh" | "autossh" | "rsh") {
                // The rest is the remote command.
                return;
            }
            first = false;
        }
    }
}

/// Wrappers of the shell reader's table whose command [`Scan::nested`]
/// finds (after a host, in a string, after `--`): the wrapper loop of
/// [`Scan::command_words`] leaves them as the program.
const READ_BY_NESTED: &[&str] = &[
    "ssh",
    "autossh",
    "mosh",
    "watch",
    "sshpass",
    "flock",
    "chroot",
    "nsenter",
    "firejail",
    "strace",
    "ltrace",
    "valgrind",
    "torsocks",
    "proxychains",
    "proxychains4",
    "eval",
    "runuser",
];

/// How deep commands nest (`sh -c "sudo docker exec c bash -c '…'"`)
/// before the scan stops looking inside.
const MAX_NESTING: usize = 6;

/// Whether `name` is one of [`NESTED_PROGRAMS`]: a hash lookup, as this
/// runs for every argument of `docker`, `kubectl`… lines.
fn nested_program(name: &str) -> bool {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| NESTED_PROGRAMS.iter().copied().collect())
        .contains(name)
}

/// Programs a wrapper's nested command is recognized by when no `--`
/// marks where it starts (`docker exec -it db mysql …`).
const NESTED_PROGRAMS: &[&str] = &[
    "mysql",
    "mysqldump",
    "mysqladmin",
    "mariadb",
    "mariadb-dump",
    "mysqlimport",
    "mysqlshow",
    "mysqlcheck",
    "mysqlpump",
    "mysqlsh",
    "mysqlbinlog",
    "psql",
    "pg_dump",
    "pg_dumpall",
    "pg_restore",
    "createdb",
    "dropdb",
    "createuser",
    "dropuser",
    "pg_isready",
    "vacuumdb",
    "reindexdb",
    "pgbench",
    "pg_basebackup",
    "mongo",
    "mongosh",
    "mongodump",
    "mongorestore",
    "mongoexport",
    "mongoimport",
    "sqlcmd",
    "bcp",
    "redis-cli",
    "valkey-cli",
    "keydb-cli",
    "sshpass",
    "curl",
    "wget",
    "smbclient",
    "rpcclient",
    "smbmap",
    "ldapsearch",
    "ldapmodify",
    "ldapadd",
    "ldapdelete",
    "ldapwhoami",
    "ldappasswd",
    "ldapcompare",
    "openssl",
    "zip",
    "unzip",
    "zipcloak",
    "7z",
    "7za",
    "7zr",
    "ssh",
    "scp",
    "sftp",
    "rsync",
    "mosh",
    "ssh-copy-id",
    "autossh",
    "sshfs",
    "rsh",
    "htpasswd",
    "vault",
    "sh",
    "bash",
    "zsh",
    "dash",
    "ksh",
    "fish",
    "eval",
    "sudo",
    "doas",
    "env",
    "su",
    "runuser",
    "watch",
    "timeout",
    "nohup",
];

/// How a short flag takes its value: `-p X`, `-pX`, or either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Spaced,
    Glued,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Password,
    User,
    Host,
    UserPass,
    UserPercent,
    UserComma,
    Cookie,
    UserHost,
}

/// What a row's secret is when it is not a flag's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    None,
    /// `user@host[:path]` operands, and ssh's host (named by the program).
    Remote(&'static str),
    /// `htpasswd -b file user PASSWORD`: the last operand.
    HtpasswdBatch,
    /// `cargo login TOKEN`, `vault login TOKEN` (`allow_pairs`: a
    /// `key=value` word may be the token; vault's are its options).
    TokenAfterLogin {
        allow_pairs: bool,
    },
    /// `kubectl create secret generic n --from-literal=key=VALUE`.
    FromLiteral,
    /// `echo pw | docker login --password-stdin`: what is printed into a
    /// program that reads a password on its standard input.
    PrintsIntoReader,
}

/// One row of the per-program table: the programs, the word that must be
/// among their arguments for the row to apply (`docker login`), what
/// their short flags (`-p`, glued or spaced) and long flags carry, and a
/// test vector: a line and the value it must give.
#[derive(Debug)]
pub struct ProgramRule {
    pub names: &'static [&'static str],
    pub when: Option<&'static str>,
    pub short: &'static [(&'static str, Kind, Form)],
    pub long: &'static [(&'static str, Kind)],
    pub special: Special,
    /// Lines and the value each must give.
    pub tp: &'static [(&'static str, &'static str)],
    /// Lines that must give no secret.
    pub fp: &'static [&'static str],
}

const fn row(
    names: &'static [&'static str],
    short: &'static [(&'static str, Kind, Form)],
    long: &'static [(&'static str, Kind)],
) -> ProgramRule {
    ProgramRule {
        names,
        when: None,
        short,
        long,
        special: Special::None,
        tp: &[],
        fp: &[],
    }
}

use Form::{Both, Glued, Spaced};
use Kind::{Cookie, Host, Password, User, UserComma, UserHost, UserPass, UserPercent};

/// Every program whose flags or operands carry a secret, a user or a host.
/// Flags named after a secret (`--password X`, `--api-token=X`) need no
/// row: [`secret_flag`] and [`secret_name`] read them for every program.
pub const PROGRAMS: &[ProgramRule] = &[
    ProgramRule {
        // `-p` takes its password glued only: `-p db` prompts.
        tp: &[
            ("mysql -u root -pTr0ub4dor&3 prod", "Tr0ub4dor&3"),
            ("mysqldump -uroot -p'S3cr3t!pw' db", "'S3cr3t!pw'"),
        ],
        fp: &["mysql -p prod", "mysql -u root -p"],
        ..row(
            &[
                "mysql",
                "mysqldump",
                "mysqladmin",
                "mariadb",
                "mariadb-dump",
                "mysqlimport",
                "mysqlshow",
                "mysqlcheck",
                "mysqlpump",
                "mysqlsh",
                "mysqlbinlog",
            ],
            &[
                ("-p", Password, Glued),
                ("-u", User, Spaced),
                ("-h", Host, Spaced),
            ],
            &[("--user", User), ("--host", Host)],
        )
    },
    ProgramRule {
        tp: &[("psql -U jdoe -h db.acme.internal", "jdoe")],
        fp: &["psql -U jdoe -W prod"],
        ..row(
            &[
                "psql",
                "pg_dump",
                "pg_dumpall",
                "pg_restore",
                "createdb",
                "dropdb",
                "createuser",
                "dropuser",
                "pg_isready",
                "vacuumdb",
                "reindexdb",
                "pgbench",
                "pg_basebackup",
            ],
            &[("-U", User, Spaced), ("-h", Host, Spaced)],
            &[("--username", User), ("--host", Host)],
        )
    },
    ProgramRule {
        tp: &[(
            "mongosh -u admin -p Mong0Pw! --authenticationDatabase admin",
            "Mong0Pw!",
        )],
        fp: &["mongosh -u admin -p"],
        ..row(
            &[
                "mongo",
                "mongosh",
                "mongodump",
                "mongorestore",
                "mongoexport",
                "mongoimport",
            ],
            &[("-p", Password, Spaced), ("-u", User, Spaced)],
            &[("--username", User), ("--host", Host)],
        )
    },
    ProgramRule {
        tp: &[
            ("sqlcmd -S db1 -U sa -P Sql$erverPw1", "Sql$erverPw1"),
            ("bcp t out f -PGlu3dPw", "Glu3dPw"),
        ],
        fp: &["sqlcmd -S db1 -E"],
        ..row(
            &["sqlcmd", "bcp"],
            &[
                ("-P", Password, Both),
                ("-U", User, Spaced),
                ("-S", Host, Spaced),
            ],
            &[],
        )
    },
    ProgramRule {
        tp: &[
            ("redis-cli -h cache -a R3disPw get k", "R3disPw"),
            ("valkey-cli -aGlu3d ping", "Glu3d"),
        ],
        fp: &["redis-cli -h cache ping"],
        ..row(
            &["redis-cli", "valkey-cli", "keydb-cli"],
            &[("-a", Password, Both), ("-h", Host, Spaced)],
            &[("--user", User)],
        )
    },
    ProgramRule {
        tp: &[
            ("sshpass -p 'hunter2' ssh host", "'hunter2'"),
            ("sshpass -phunter2 ssh h", "hunter2"),
        ],
        fp: &["sshpass -f ~/.pw ssh host", "sshpass -e ssh host"],
        ..row(&["sshpass"], &[("-p", Password, Both)], &[])
    },
    ProgramRule {
        when: Some("login"),
        tp: &[(
            "docker login -u jdoe -p Passw0rd123 reg.acme.io",
            "Passw0rd123",
        )],
        fp: &[
            "docker login -u jdoe reg.acme.io",
            "docker run -p 8080:80 nginx",
        ],
        ..row(
            &[
                "docker", "podman", "nerdctl", "buildah", "skopeo", "helm", "oras", "crane",
                "regctl", "cosign", "finch", "oc", "az", "cf",
            ],
            &[("-p", Password, Spaced), ("-u", User, Spaced)],
            &[("--username", User)],
        )
    },
    ProgramRule {
        tp: &[
            ("curl -u admin:Cu4lPw https://api.acme.io", "Cu4lPw"),
            ("curl -b 'session=abc123' https://x.io", "'session=abc123'"),
            ("curl --proxy-user bob:Pr0xyPw https://x.io", "Pr0xyPw"),
        ],
        fp: &["curl -b cookies.txt https://x.io", "curl -s https://x.io"],
        ..row(
            &["curl"],
            &[
                ("-b", Cookie, Both),
                ("-u", UserPass, Both),
                ("-U", UserPass, Both),
            ],
            &[
                ("--cookie", Cookie),
                ("--user", UserPass),
                ("--proxy-user", UserPass),
            ],
        )
    },
    ProgramRule {
        tp: &[(
            "wget --user jdoe --password=Wg3tPw https://x.io/f",
            "Wg3tPw",
        )],
        fp: &["wget --user jdoe https://x.io/f"],
        ..row(
            &["wget"],
            &[],
            &[
                ("--user", User),
                ("--http-user", User),
                ("--ftp-user", User),
            ],
        )
    },
    ProgramRule {
        tp: &[("smbclient //fs/share -U jdoe%Smb9Pw", "Smb9Pw")],
        fp: &["smbclient //fs/share -U jdoe"],
        ..row(
            &["smbclient", "rpcclient", "smbmap", "net"],
            &[("-U", UserPercent, Both)],
            &[("--user", UserPercent)],
        )
    },
    ProgramRule {
        tp: &[
            ("ldapsearch -x -D cn=admin -w Ld4pPw -b dc=x", "Ld4pPw"),
            ("ldapwhoami -wGlu3dLdap", "Glu3dLdap"),
        ],
        fp: &["ldapsearch -x -W -b dc=x"],
        ..row(
            &[
                "ldapsearch",
                "ldapmodify",
                "ldapadd",
                "ldapdelete",
                "ldapwhoami",
                "ldappasswd",
                "ldapcompare",
            ],
            &[
                ("-w", Password, Both),
                ("-D", User, Spaced),
                ("-H", Host, Spaced),
            ],
            &[],
        )
    },
    ProgramRule {
        tp: &[
            ("openssl enc -aes-256-cbc -k Ss1Pass -in f", "Ss1Pass"),
            ("openssl pkcs12 -passout pass:Exp0rtPw", "Exp0rtPw"),
        ],
        fp: &["openssl enc -aes-256-cbc -pass env:PW -in f"],
        ..row(
            &["openssl"],
            &[("-k", Password, Spaced), ("-K", Password, Spaced)],
            &[],
        )
    },
    ProgramRule {
        tp: &[
            ("zip -P Z1pPw out.zip f", "Z1pPw"),
            ("unzip -PGlu3dZip a.zip", "Glu3dZip"),
        ],
        fp: &["zip -r out.zip dir"],
        ..row(
            &["zip", "unzip", "zipcloak"],
            &[("-P", Password, Both)],
            &[],
        )
    },
    ProgramRule {
        tp: &[("7z a -pS3venPw x.7z dir", "S3venPw")],
        fp: &["7z a -p x.7z dir"],
        ..row(&["7z", "7za", "7zr"], &[("-p", Password, Glued)], &[])
    },
    ProgramRule {
        when: Some("secret"),
        tp: &[("gh secret set API -b Gh5ecretVal", "Gh5ecretVal")],
        fp: &["gh secret list"],
        ..row(&["gh"], &[("-b", Password, Both)], &[("--body", Password)])
    },
    ProgramRule {
        special: Special::Remote("ssh"),
        tp: &[("ssh deploy@db-3.acme.internal uptime", "deploy")],
        fp: &["ssh-add -l"],
        ..row(
            &["ssh"],
            &[("-l", User, Spaced), ("-J", UserHost, Spaced)],
            &[],
        )
    },
    ProgramRule {
        special: Special::Remote("scp"),
        tp: &[("scp f.txt jdoe@files.acme.internal:/tmp", "jdoe")],
        fp: &["scp a b"],
        ..row(
            &["scp"],
            &[("-l", User, Spaced), ("-J", UserHost, Spaced)],
            &[],
        )
    },
    ProgramRule {
        special: Special::Remote("sftp"),
        tp: &[(
            "sftp -J bastion.acme.internal jdoe@files",
            "bastion.acme.internal",
        )],
        fp: &[],
        ..row(
            &["sftp"],
            &[("-l", User, Spaced), ("-J", UserHost, Spaced)],
            &[],
        )
    },
    ProgramRule {
        special: Special::Remote("rsync"),
        tp: &[("rsync -a dir/ jdoe@backup.acme.internal:/srv", "jdoe")],
        fp: &[],
        ..row(
            &["rsync"],
            &[("-l", User, Spaced), ("-J", UserHost, Spaced)],
            &[],
        )
    },
    ProgramRule {
        special: Special::Remote("mosh"),
        tp: &[("mosh jdoe@shell.acme.internal", "jdoe")],
        fp: &[],
        ..row(
            &["mosh"],
            &[("-l", User, Spaced), ("-J", UserHost, Spaced)],
            &[],
        )
    },
    ProgramRule {
        special: Special::Remote("ssh-copy-id"),
        tp: &[("ssh-copy-id jdoe@shell.acme.internal", "jdoe")],
        fp: &[],
        ..row(
            &["ssh-copy-id"],
            &[("-l", User, Spaced), ("-J", UserHost, Spaced)],
            &[],
        )
    },
    ProgramRule {
        special: Special::Remote("autossh"),
        tp: &[("autossh -M 0 jdoe@tunnel.acme.internal", "jdoe")],
        fp: &[],
        ..row(
            &["autossh"],
            &[("-l", User, Spaced), ("-J", UserHost, Spaced)],
            &[],
        )
    },
    ProgramRule {
        special: Special::Remote("sshfs"),
        tp: &[("sshfs jdoe@files.acme.internal:/srv mnt", "jdoe")],
        fp: &[],
        ..row(
            &["sshfs"],
            &[("-l", User, Spaced), ("-J", UserHost, Spaced)],
            &[],
        )
    },
    ProgramRule {
        special: Special::Remote("rsh"),
        tp: &[("rsh -l jdoe oldhost ls", "jdoe")],
        fp: &[],
        ..row(
            &["rsh"],
            &[("-l", User, Spaced), ("-J", UserHost, Spaced)],
            &[],
        )
    },
    ProgramRule {
        special: Special::HtpasswdBatch,
        tp: &[
            ("htpasswd -b .htpasswd jane Htp4ssw0rd", "Htp4ssw0rd"),
            ("htpasswd -Bbc f jane Bcr4pt", "Bcr4pt"),
        ],
        fp: &["htpasswd -c .htpasswd jane"],
        ..row(&["htpasswd"], &[], &[])
    },
    ProgramRule {
        tp: &[
            ("ssh-keygen -t ed25519 -N 'K3yPhrase' -f k", "'K3yPhrase'"),
            ("ssh-keygen -p -P 0ldPhr -N N3wPhr -f k", "0ldPhr"),
        ],
        fp: &["ssh-keygen -t ed25519 -N '' -f k", "ssh-keygen -l -f k.pub"],
        ..row(
            &["ssh-keygen"],
            &[("-N", Password, Both), ("-P", Password, Both)],
            &[],
        )
    },
    ProgramRule {
        tp: &[("lftp -u jdoe,Lftp9Pw ftp.acme.internal", "Lftp9Pw")],
        fp: &["lftp -u jdoe ftp.acme.internal"],
        ..row(&["lftp"], &[("-u", UserComma, Spaced)], &[])
    },
    ProgramRule {
        tp: &[
            ("http -a jdoe:Ht7pPw GET api.acme.io", "Ht7pPw"),
            ("xh --auth=jdoe:Xh9Pw get x.io", "Xh9Pw"),
        ],
        fp: &["http GET api.acme.io"],
        ..row(
            &["http", "https", "xh", "xhs"],
            &[("-a", UserPass, Both)],
            &[("--auth", UserPass)],
        )
    },
    ProgramRule {
        tp: &[(
            "twine upload -u __token__ -p pypi-AgEIcHlwaS5vcmc dist/*",
            "pypi-AgEIcHlwaS5vcmc",
        )],
        fp: &["twine upload dist/*"],
        ..row(
            &["twine"],
            &[("-p", Password, Both), ("-u", User, Spaced)],
            &[("--username", User)],
        )
    },
    ProgramRule {
        when: Some("login"),
        special: Special::TokenAfterLogin { allow_pairs: true },
        tp: &[("cargo login cio4Xq9zRtYb2Lk8", "cio4Xq9zRtYb2Lk8")],
        fp: &["cargo login", "cargo build --release"],
        ..row(&["cargo"], &[], &[])
    },
    ProgramRule {
        when: Some("login"),
        special: Special::TokenAfterLogin { allow_pairs: false },
        tp: &[("vault login hvs.CAESIJ8xq2Lr0", "hvs.CAESIJ8xq2Lr0")],
        fp: &["vault login -method=userpass username=jdoe"],
        ..row(&["vault"], &[], &[])
    },
    ProgramRule {
        when: Some("secret"),
        special: Special::FromLiteral,
        tp: &[(
            "kubectl create secret generic db --from-literal=password=K8sPw1",
            "K8sPw1",
        )],
        fp: &["kubectl get secret db -o yaml"],
        ..row(&["kubectl", "oc"], &[], &[])
    },
    ProgramRule {
        special: Special::PrintsIntoReader,
        tp: &[(
            "echo Reg1stryPw | docker login -u jdoe --password-stdin",
            "Reg1stryPw",
        )],
        fp: &["echo hello | wc -c"],
        ..row(&["echo", "printf", "yes"], &[], &[])
    },
];

/// The rows of [`PROGRAMS`] naming `prog`, in table order, looked up in a
/// map built once rather than by walking the table for every command.
fn rows_of(prog: &str) -> &'static [usize] {
    static MAP: std::sync::OnceLock<std::collections::HashMap<&'static str, Vec<usize>>> =
        std::sync::OnceLock::new();
    MAP.get_or_init(|| {
        let mut m: std::collections::HashMap<&'static str, Vec<usize>> =
            std::collections::HashMap::new();
        for (i, r) in PROGRAMS.iter().enumerate() {
            for n in r.names {
                m.entry(*n).or_default().push(i);
            }
        }
        m
    })
    .get(prog)
    .map_or(&[], Vec::as_slice)
}

/// `Name: value`, as a header is written.
fn header_shaped(t: &str) -> bool {
    match t.find(':') {
        Some(c) if c > 0 && !t[c..].starts_with("://") => {
            let name = t[..c].trim_end();
            name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }
        _ => false,
    }
}

fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

fn is_assignment(word: &str) -> bool {
    match word.find('=') {
        Some(eq) if eq > 0 => word[..eq]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        _ => false,
    }
}

/// Programs whose standard input is a password: what `echo`/`printf`
/// print into them in the same line is one.
fn reads_password(commands: &[Vec<Word>]) -> bool {
    commands.iter().any(|words| reads_password_cmd(words))
}

/// Whether a line (or a nested command's text) pipes a password in:
/// [`reads_password`], or a pipe into `passwd` (`yes pw | passwd`).
fn line_reads_password(text: &str, commands: &[Vec<Word>]) -> bool {
    reads_password(commands)
        || (text.contains('|')
            && commands.iter().skip(1).any(|words| {
                words
                    .iter()
                    .take(3)
                    .any(|w| matches!(basename(&w.text), "passwd" | "chpasswd"))
            }))
}

/// Whether one simple command reads a password on its standard input.
fn reads_password_cmd(words: &[Word]) -> bool {
    let first = words.first().map(|w| basename(&w.text));
    let (mut passwd, mut stdin, mut htpasswd, mut i, mut big_s, mut short_s) =
        (false, false, false, false, false, false);
    // One pass over the words: this runs for every command line.
    for w in words {
        let t = w.text.as_str();
        match t {
            "--password-stdin" | "--with-token" => return true,
            "--stdin" => stdin = true,
            "-i" => i = true,
            "-S" => big_s = true,
            _ => {}
        }
        if t.starts_with('-') && !t.starts_with("--") && t.contains('s') {
            short_s = true;
        }
        if t.contains("passwd") {
            match basename(t) {
                "chpasswd" => return true,
                "passwd" => passwd = true,
                "htpasswd" => htpasswd = true,
                _ => {}
            }
        }
    }
    (passwd && stdin)
        || (htpasswd && i)
        || (first == Some("sudo") && big_s)
        || (first == Some("read") && short_s)
}

/// Everything the command line's shape says is a secret, a user, a host or
/// a name: sorted, possibly overlapping. Values that are placeholders
/// already, variables or substitutions are never reported.
pub fn findings(line: &str) -> Vec<Finding> {
    let commands = lex(line);
    let stdin_secret = line_reads_password(line, &commands);
    let mut scan = Scan {
        line,
        out: Vec::new(),
    };
    for words in &commands {
        scan.command(words, stdin_secret, 0);
    }
    let mut out = scan.out;
    out.sort_by_key(|f| (f.start, f.end));
    out.dedup_by_key(|f| (f.start, f.end));
    out
}

/// The secrets among [`findings`]: what `verify` must never find again in
/// an exported command line.
pub fn secrets(line: &str) -> Vec<Finding> {
    findings(line)
        .into_iter()
        .filter(|f| f.category == Category::Secret)
        .collect()
}

pub fn is_public_host(host: &str) -> bool {
    let h = host.trim_end_matches('.');
    PUBLIC_HOSTS.iter().any(|p| p.eq_ignore_ascii_case(h))
}

// ---------------------------------------------------------------------------
// The engine's side: any text line that reads as a command

/// Fragments of secret names and of programs that read a password on their
/// standard input: a line holding none of them (and none of the table's
/// program names) is never lexed. Found anywhere in a word.
pub const NAME_FRAGMENTS: &[&str] = &[
    "pass",
    "pwd",
    "token",
    "secret",
    "key",
    "auth",
    "cookie",
    "credential",
    "bearer",
    "sig=",
    "http-basic",
    "<<<",
];

/// Program names of [`PROGRAMS`] the engine's prefilter looks for as whole
/// words. `echo`/`printf`/`yes` are left out: they matter only when a
/// password reader is on the line, and [`NAME_FRAGMENTS`] finds those.
pub fn program_triggers() -> impl Iterator<Item = &'static str> {
    PROGRAMS
        .iter()
        .filter(|r| r.special != Special::PrintsIntoReader)
        .flat_map(|r| r.names.iter().copied())
}

/// Whether the `len` bytes at `at` in `b` stand as a word of their own, as
/// a program name does (`/usr/bin/mysql`, `sudo mysql`, `"mysql`), not as
/// part of another (`mysql_connect`, `http://`).
pub fn whole_word(b: &[u8], at: usize, len: usize) -> bool {
    let before = at.checked_sub(1).map(|i| b[i]);
    let after = b.get(at + len).copied();
    before.is_none_or(|c| c.is_ascii_whitespace() || b"/'\"`;|&($@".contains(&c))
        && after.is_none_or(|c| c.is_ascii_whitespace() || b"'\"`;|&)".contains(&c))
}

/// Lines longer than this are not command lines (minified code, data).
const MAX_LINE: usize = 16 << 10;

/// YAML keys whose value is a command line (GitHub Actions, GitLab CI,
/// docker-compose, Kubernetes, Ansible).
const COMMAND_KEYS: &[&str] = &[
    "run:",
    "script:",
    "command:",
    "cmd:",
    "entrypoint:",
    "shell:",
    "exec:",
    "before_script:",
    "after_script:",
    "args:",
];

/// Where the command starts in a line that carries one after some framing:
/// indentation, a YAML list dash, a YAML command key, Dockerfile `RUN`, a
/// Makefile recipe's `@`/`-`, or a shell prompt (`user@host:~/x$ `).
pub fn command_start(line: &str) -> usize {
    let b = line.as_bytes();
    let mut i = 0;
    loop {
        let before = i;
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        let rest = &line[i..];
        if let Some(r) = rest.strip_prefix("- ") {
            i = line.len() - r.len();
        } else if let Some(k) = COMMAND_KEYS.iter().find(|k| rest.starts_with(**k)) {
            i += k.len();
        } else if rest.starts_with("RUN ") {
            i += 4;
        } else if rest.starts_with(['@', '-'])
            && rest.as_bytes().get(1).is_some_and(u8::is_ascii_alphabetic)
            && line.starts_with('\t')
        {
            i += 1;
        } else if let Some(p) = rest.get(..rest.len().min(96)).and_then(|h| h.find("$ ")) {
            // A prompt: no spaces before its `$`, and `@`, `:` or `~` in it.
            let head = &rest[..p];
            if !head.is_empty()
                && !head.contains(char::is_whitespace)
                && head.contains(['@', ':', '~'])
            {
                i += p + 2;
            } else if head.is_empty() {
                i += 2;
            }
        }
        if i == before {
            return i;
        }
    }
}

/// Whether `cmd` runs a program as a shell line does: the first simple
/// command has a program word that is a plain command name or path (not
/// `foo.bar(`, `x:`, `{`), or goes through a wrapper.
fn reads_as_command(cmd: &str) -> bool {
    let invocations = crate::shell::invocations(cmd);
    let Some(first) = invocations.first() else {
        return false;
    };
    if !first.wrappers.is_empty() {
        return true;
    }
    let Some(p) = &first.program else {
        return false;
    };
    let w = p.word.text.as_str();
    // A call (`sorted(xs, key=len)`, `println!(…)`, `Ok(Key::X)`) is code:
    // a shell line never glues `(` to a name, `$(` and `<(` aside.
    let b = cmd.as_bytes();
    if b.windows(2).any(|x| {
        x[1] == b'(' && (x[0].is_ascii_alphanumeric() || matches!(x[0], b'_' | b'!' | b']'))
    }) {
        return false;
    }
    // `api_key = os.environ[...]`, `x += 1`: an assignment in code or
    // config; a shell line never gives a lone operator as the first
    // argument.
    if p.args
        .first()
        .is_some_and(|a| !a.quoted && ASSIGN_OPS.contains(&a.text.as_str()))
    {
        return false;
    }
    let named = !rows_of(&p.name).is_empty();
    named
        || (!w.is_empty()
            && cmd
                .trim_start()
                .starts_with(|c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '_'))
            && w.bytes().any(|c| c.is_ascii_alphanumeric())
            && w.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._+-/".contains(&c))
            && !CODE_WORDS.contains(&w))
}

/// A necessary condition for [`secrets`] to find anything in `cmd` when no
/// program of the table is on the line: some word must be a flag (`-` at
/// a word's start), a pair or assignment (`=`), a header or URL (`:`), a
/// here-string (`<<<`), or SQL, `setenv`, `config` or a pipe into
/// `passwd`, which are checked by name. Every secret [`Scan`] reports
/// comes from one of those shapes.
fn may_hold_secret(cmd: &str) -> bool {
    let b = cmd.as_bytes();
    if memchr::memchr2(b'=', b':', b).is_some()
        || memchr::memmem::find(b, b"<<<").is_some()
        || flag_start(b)
    {
        return true;
    }
    static NAMES: std::sync::OnceLock<Option<aho_corasick::AhoCorasick>> =
        std::sync::OnceLock::new();
    NAMES
        .get_or_init(|| {
            aho_corasick::AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .build(["passw", "identified", "setenv", "config"])
                .ok()
        })
        .as_ref()
        .is_none_or(|names| names.is_match(b))
}

/// Whether a `-` in `b` may start a word: the lexer only ever ends a word
/// at a byte that is not a letter, digit or `_`, so a `-` glued after one
/// (`dead-letter`, `trade-offs`: prose) never starts a flag. Quotes and
/// escapes before a `-` count as a start, which errs towards lexing.
fn flag_start(b: &[u8]) -> bool {
    memchr::memchr_iter(b'-', b)
        .any(|i| i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
}

/// A necessary condition for [`secrets`] to find anything in `cmd` when a
/// program of the table is on it (`kubectl -n web get pods`, `cargo test`
/// are most of a shell history, and lexing each cost more than the rest of
/// the scan). Every secret [`Scan`] reports comes from:
/// - a name holding a mark of [`secret_name`] (flags, pairs, headers,
///   `config`/`setenv` keys, query parameters, SQL `password`);
/// - a URL's user-info or query (`://`), SQL `IDENTIFIED BY`,
///   `http-basic.` keys, `user:password` after a user flag or key (`user`,
///   `usr`, `login`, which also names `… login TOKEN`);
/// - a flag of the table whose value is a secret, on a line naming one of
///   the programs whose row has it and the argument the row needs (`-p` of
///   `mysql`, `-b` of `curl`, `-p` of `docker login`);
/// - what is printed or here-stringed into a password reader: `sudo -S`,
///   `read -s`, and readers named by a mark (`passwd`, `--password-stdin`,
///   `--with-token`). `kubectl`'s `--from-literal` needs `secret`.
///
/// The lexer joins what quotes and escapes split (`--pass''word=x`), so
/// the test reads the line with every quote and backslash taken out: each
/// word the lexer makes is then in it, whole.
fn program_line_may_hold_secret(cmd: &str) -> bool {
    // Without its automata (they cannot fail to build), every line is lexed.
    let Some(t) = program_line_triggers() else {
        return true;
    };
    let raw = cmd.as_bytes();
    let unquoted: Vec<u8>;
    let b = if memchr::memchr3(b'\'', b'"', b'\\', raw).is_some() {
        unquoted = raw
            .iter()
            .copied()
            .filter(|c| !matches!(c, b'\'' | b'"' | b'\\'))
            .collect();
        &unquoted[..]
    } else {
        raw
    };
    if t.anywhere.is_match(b) {
        return true;
    }
    t.flags.find_overlapping_iter(b).any(|m| {
        let at_start = m.start() == 0
            || !(b[m.start() - 1].is_ascii_alphanumeric() || b[m.start() - 1] == b'_');
        at_start
            && t.owners[m.pattern().as_usize()]
                .iter()
                .any(|(names, when)| {
                    let holds = |w: &str| memchr::memmem::find(b, w.as_bytes()).is_some();
                    when.is_none_or(holds) && names.iter().any(|p| holds(p))
                })
    })
}

/// The automata of [`program_line_may_hold_secret`].
struct LineTriggers {
    /// Literals that count anywhere, in any case.
    anywhere: aho_corasick::AhoCorasick,
    /// Secret flags of the table, exactly; they count at a word's start.
    flags: aho_corasick::AhoCorasick,
    /// For each flag, the rows that have it: their programs, and the word
    /// the row needs among the arguments (`docker login -p`, not
    /// `docker run -p`).
    owners: Vec<Vec<Owner>>,
}

fn program_line_triggers() -> Option<&'static LineTriggers> {
    static TRIGGERS: std::sync::OnceLock<Option<LineTriggers>> = std::sync::OnceLock::new();
    TRIGGERS
        .get_or_init(|| {
            const ANYWHERE: &[&str] = &[
                "pass",
                "pw",
                "token",
                "secret",
                "key",
                "credential",
                "auth",
                "bearer",
                "cookie",
                "signature",
                "sessionid",
                "://",
                "identified",
                "http-basic",
                "user",
                "usr",
                "login",
                "read",
            ];
            let mut owners: Vec<(&str, Vec<Owner>)> = vec![("-S", vec![(&["sudo"], None)])];
            for (flag, owner) in secret_flags() {
                match owners.iter_mut().find(|(f, _)| *f == flag) {
                    Some((_, o)) => o.push(owner),
                    None => owners.push((flag, vec![owner])),
                }
            }
            let anywhere = aho_corasick::AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .build(ANYWHERE)
                .ok()?;
            let flags = aho_corasick::AhoCorasick::new(owners.iter().map(|o| o.0)).ok()?;
            Some(LineTriggers {
                anywhere,
                flags,
                owners: owners.into_iter().map(|o| o.1).collect(),
            })
        })
        .as_ref()
}

/// A row's programs and the argument it needs.
type Owner = (&'static [&'static str], Option<&'static str>);

/// The table's flags whose value is (or holds) a secret, each with the
/// programs of its row and the argument the row needs.
fn secret_flags() -> impl Iterator<Item = (&'static str, Owner)> {
    let secret = |k: Kind| {
        matches!(
            k,
            Kind::Password | Kind::UserPass | Kind::UserPercent | Kind::UserComma | Kind::Cookie
        )
    };
    PROGRAMS.iter().flat_map(move |r| {
        r.short
            .iter()
            .filter(move |f| secret(f.1))
            .map(|f| f.0)
            .chain(r.long.iter().filter(move |f| secret(f.1)).map(|f| f.0))
            .map(|f| (f, (r.names, r.when)))
    })
}

/// Operators that make a line an assignment when they follow its first
/// word on their own.
const ASSIGN_OPS: &[&str] = &["=", "+=", "-=", "*=", "/=", ":=", "?=", "==", "::="];

/// [`reads_as_command`] without lexing, when the line's first word is
/// plain (no quote, escape, substitution, `=` or non-ASCII byte, and no
/// wrapper or shell keyword): then the lexer's first word is exactly it.
/// `None` when it cannot tell.
fn quick_reads_as_command(cmd: &str) -> Option<bool> {
    let b = cmd.as_bytes();
    let plain = |c: u8| {
        c.is_ascii_graphic()
            && !matches!(
                c,
                b';' | b'|' | b'&' | b'(' | b')' | b'<' | b'>' | b'\'' | b'"' | b'\\' | b'$' | b'`'
            )
    };
    let blank = |c: u8| matches!(c, b' ' | b'\t');
    // A plain word from `at`: its end, when the lexer ends it there too.
    let word_at = |at: usize| -> Option<usize> {
        let e = at + b[at..].iter().take_while(|&&c| plain(c)).count();
        let clean = match b.get(e) {
            None => true,
            Some(c) => matches!(
                c,
                b' ' | b'\t' | b'\n' | b'\r' | b';' | b'|' | b'&' | b'(' | b')'
            ),
        };
        (e > at && clean && b[at] != b'#').then_some(e)
    };
    let line_start = b.iter().position(|&c| !blank(c))?;
    let mut s = line_start;
    // `NAME=value` alone on the line: no program runs.
    if let Some(eq) = cmd[s..].find('=') {
        let name = &cmd[s..s + eq];
        let value = &b[s + eq + 1..];
        if crate::shell::is_assignment(&cmd[s..s + eq + 1])
            && !name.is_empty()
            && value
                .iter()
                .all(|&c| c.is_ascii_graphic() && !b";|&()<>'\"\\`".contains(&c))
            && memchr::memmem::find(value, b"$(").is_none()
            && memchr::memmem::find(value, b"$'").is_none()
        {
            return Some(false);
        }
    }
    // Shell keywords in front (`if let …`) are skipped as the reader does.
    let (w, e) = loop {
        let e = word_at(s)?;
        let w = &cmd[s..e];
        if !crate::shell::KEYWORDS.contains(&w) {
            break (w, e);
        }
        s = e + b[e..].iter().take_while(|&&c| blank(c)).count();
        if s >= b.len() {
            return None;
        }
    };
    if w.contains('=') || crate::shell::wrapper(crate::shell::basename(w)).is_some() {
        return None;
    }
    if b.windows(2).any(|x| {
        x[1] == b'(' && (x[0].is_ascii_alphanumeric() || matches!(x[0], b'_' | b'!' | b']'))
    }) {
        return Some(false);
    }
    // The first argument, when it is a plain word: a lone `=` makes code.
    let a = e + b[e..].iter().take_while(|&&c| blank(c)).count();
    if a > e && a < b.len() {
        // A redirection first (`x <<< w = …`): its target is no argument,
        // so what the lexer sees first is further on.
        if matches!(b[a], b'<' | b'>') {
            return None;
        }
        if let Some(ae) = word_at(a) {
            if ASSIGN_OPS.contains(&&cmd[a..ae]) {
                return Some(false);
            }
        }
    }
    let name = crate::shell::basename(w);
    let named = !rows_of(name).is_empty();
    let first = b[line_start];
    Some(
        named
            || (first.is_ascii_alphanumeric() || matches!(first, b'.' | b'/' | b'_'))
                && w.bytes().any(|c| c.is_ascii_alphanumeric())
                && w.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"._+-/".contains(&c))
                && !CODE_WORDS.contains(&w),
    )
}

/// First words of code lines that a shell line never starts with.
const CODE_WORDS: &[&str] = &[
    "let",
    "const",
    "var",
    "val",
    "def",
    "fn",
    "pub",
    "return",
    "static",
    "final",
    "private",
    "public",
    "protected",
    "func",
    "auto",
    "int",
    "char",
    "bool",
    "struct",
    "impl",
    "use",
    "import",
    "from",
    "package",
    "class",
    "self",
    "this",
    "await",
    "yield",
    "assert",
    "print",
    "global",
    "local",
    "my",
    "our",
    "case",
    "match",
];

/// The secrets the command-line rules find in `text[start..end]`, one line,
/// when it reads as a command: pushed onto `out` with offsets in `text`.
/// Placeholders (`changeme`, `EXAMPLE`), references (`$PW`,
/// `${{ secrets.X }}`) and non-values (`true`, `None`) are not secrets.
///
/// `program_hit`: whether a program name of the table stands on the line
/// (the engine's keyword pass knows). Without one, only a line with a
/// flag, an assignment, a header, a URL, a here-string or a password
/// reader can give a secret, which [`may_hold_secret`] checks on bytes.
pub fn scan_line(text: &str, start: usize, end: usize, program_hit: bool, out: &mut Vec<Finding>) {
    if end - start > MAX_LINE {
        return;
    }
    let line = &text[start..end];
    let skip = command_start(line);
    let cmd = &line[skip..];
    // Both cheap tests come before the lexer: most lines the keyword pass
    // sends here are code or prose (`let key = map.get(k);`), and lexing
    // each of them cost more than the rest of the scan together.
    let maybe = if program_hit {
        program_line_may_hold_secret(cmd)
    } else {
        may_hold_secret(cmd)
    };
    if !maybe || quick_reads_as_command(cmd) == Some(false) {
        return;
    }
    let found = secrets(cmd);
    if found.is_empty() || !reads_as_command(cmd) {
        return;
    }
    for f in found {
        let v = &cmd[f.start..f.end];
        let bare = v.trim_matches(['\'', '"']);
        // `key::ecdsa` and `key: value` in prose are no header and no pair.
        if keep::is_placeholder(v, true)
            || keep::is_reference(v)
            || keep::is_non_value(bare)
            || bare.starts_with(':')
            || bare
                .trim_end_matches(['.', ',', '"'])
                .eq_ignore_ascii_case("value")
        {
            continue;
        }
        out.push(Finding {
            start: start + skip + f.start,
            end: start + skip + f.end,
            ..f
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row's vectors: each line gives its value (as a secret, user or
    /// host), and no false-positive line gives a secret.
    #[test]
    fn program_table_vectors() {
        let mut failures = Vec::new();
        for row in PROGRAMS {
            assert!(!row.tp.is_empty(), "{:?} has no vector", row.names);
            for (line, want) in row.tp {
                let got: Vec<&str> = findings(line)
                    .iter()
                    .map(|f| &line[f.start..f.end])
                    .collect();
                if !got.contains(want) {
                    failures.push(format!("{line:?}: wanted {want:?}, got {got:?}"));
                }
            }
            for line in row.fp {
                let got: Vec<&str> = secrets(line)
                    .iter()
                    .map(|f| &line[f.start..f.end])
                    .collect();
                if !got.is_empty() {
                    failures.push(format!("{line:?}: fired on {got:?}"));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// Lines built from shell-ish pieces, code and prose, deterministic.
    fn sample_lines() -> Vec<String> {
        let pieces = [
            "mysql",
            "-pS3cret",
            "sudo",
            "env",
            "A=1",
            "let",
            "x",
            "=",
            "f(x)",
            "key",
            "token",
            "--password",
            "hunter2",
            "'q w'",
            "\"a b\"",
            "$(pass show x)",
            "|",
            "&&",
            ";",
            "#c",
            "PGPASSWORD=pw",
            "curl",
            "-u",
            "u:p",
            "https://u:p@h/x?token=t",
            "docker",
            "exec",
            "-it",
            "c",
            "Authorization:",
            "Bearer",
            "abc",
            "<<<",
            "passwd",
            "yes",
            "config",
            "set",
            "npm_token",
            "setenv",
            "API_KEY",
            "é",
            "{",
            "}",
            "if",
            "then",
            "sh",
            "-c",
            "\\x",
            "`id`",
            "a.b",
            "./run.sh",
            "self.key",
            "return",
            "(",
            ")",
            "IDENTIFIED",
            "BY",
            "'pw'",
            "read",
            "-s",
            "echo",
            "\t",
            "git",
            "-",
            ":",
            "ssh",
            "API_KEY=${X}",
            "a=b",
            "+=",
            "==",
            "x:",
            "'='",
            "elif",
            "fi",
            "$'x'",
            "$(id)",
            "\\r",
            "dead-letter",
            "trade-",
            "--token",
            "-ptok",
            "_-x",
            "vault",
            "login",
            "s.abc",
            "htpasswd",
            "-b",
            "kubectl",
            "create",
            "--from-literal=a=b",
            "smbclient",
            "-U",
            "u%p",
            "-S",
            "sqlcmd",
            "-P",
            "-Pw",
            "--user=a:b",
            "cargo",
            "test",
            "psql",
            "-c",
            "IDENTIFIED BY",
            "http-basic.x",
            "sshpass",
            "npm",
            "\\-p",
            "pa''ss",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as usize
        };
        let mut lines = Vec::new();
        for _ in 0..20_000 {
            let n = 1 + next() % 7;
            let mut l = String::new();
            for k in 0..n {
                if k > 0 && next() % 5 != 0 {
                    l.push(' ');
                }
                l.push_str(pieces[next() % pieces.len()]);
            }
            lines.push(l);
        }
        lines
    }

    /// The lexer-free reading agrees with the lexer wherever it answers.
    #[test]
    fn quick_reading_agrees_with_the_lexer() {
        let mut answered = 0;
        for l in sample_lines() {
            if let Some(quick) = quick_reads_as_command(&l) {
                answered += 1;
                assert_eq!(quick, reads_as_command(&l), "{l:?}");
            }
        }
        assert!(answered > 5_000, "the quick path answered only {answered}");
    }

    /// Without a program of the table on the line, a line the byte test
    /// turns away gives no secret.
    #[test]
    fn the_program_line_test_never_hides_a_secret() {
        let rows = PROGRAMS
            .iter()
            .flat_map(|r| r.tp.iter().map(|t| t.0).chain(r.fp.iter().copied()))
            .map(str::to_owned);
        // Each way to a secret that names no mark, once.
        let named = [
            "echo hunter2 | sudo -S apt update",
            "printf hunter2 | read -rs X",
            "vault login s.abcdefgh",
            "curl -u alice:hunter2 https://api.acme.io",
            "curl --user=alice:hunter2 https://api.acme.io",
            "smbclient //fs/share -U alice%hunter2",
            "mysql -u root -phunter2 prod",
            "sqlcmd -S db1 -U sa -P hunter2",
            "curl -b session=abc123 https://acme.io",
            "git clone https://alice:hunter2@git.acme.io/r.git",
            "kubectl create secret generic n --from-literal=k=hunter2",
            "docker login -p hunter2 registry.acme.io",
            "tool --usr=alice:hunter2",
            "mysql -e \"ALTER ROLE r IDENTIFIED BY 'hunter2'\"",
            "composer config http-basic.repo.acme.io alice hunter2",
            "tool --to''ken=hunter2",
            "tool --to\\ken=hunter2",
        ];
        for l in named {
            assert!(!secrets(l).is_empty(), "{l:?} gives no secret");
        }
        let mut skipped = 0;
        for l in sample_lines()
            .into_iter()
            .chain(rows)
            .chain(named.map(str::to_owned))
        {
            if !program_line_may_hold_secret(&l) {
                skipped += 1;
                assert_eq!(secrets(&l), [], "{l:?}");
            }
        }
        // What a shell history is mostly made of is turned away.
        for l in [
            "docker run --rm -p 8080:80 web:latest",
            "kubectl -n web get pods -o wide",
            "git checkout -b feature/x-1",
            "git commit -m \"Fix the cache\"",
            "cargo test --release",
        ] {
            assert!(!program_line_may_hold_secret(l), "{l:?}");
        }
        // The test has teeth only if the filter turns lines away.
        assert!(skipped > 1000, "{skipped} lines turned away");
    }

    #[test]
    fn the_byte_test_never_hides_a_secret() {
        let programs: Vec<&str> = program_triggers().collect();
        for l in sample_lines() {
            let has_program = programs.iter().any(|p| {
                l.match_indices(p)
                    .any(|(i, _)| whole_word(l.as_bytes(), i, p.len()))
            });
            if !has_program && !may_hold_secret(&l) {
                assert_eq!(secrets(&l), [], "{l:?}");
            }
        }
    }
}
