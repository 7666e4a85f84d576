//! The lexer of the shell reader: a command line becomes simple commands of
//! words, each word knowing where every one of its bytes sits in the line.
//!
//! It is a reader for privacy decisions, not a shell: it never expands
//! anything, and on text a shell would reject (an unclosed quote, a stray
//! `)`) it still gives its best reading instead of an error, because the
//! callers must decide about every line they are given. Substitutions
//! (`$(…)`, backquotes, `<(…)`, `>(…)`) stay in their word's text and are
//! also read as commands of their own, since they run.

/// One shell word: its text with quotes and escapes removed, and the byte
/// offset in the line of each byte of that text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    /// `at[i]` is where `text`'s byte `i` came from in the line.
    pub at: Vec<usize>,
    /// The word's byte range in the line, quotes included.
    pub start: usize,
    pub end: usize,
    /// Whether any part of it was quoted or escaped.
    pub quoted: bool,
}

impl Word {
    fn new(start: usize) -> Word {
        Word {
            text: String::new(),
            at: Vec::new(),
            start,
            end: start,
            quoted: false,
        }
    }

    fn push(&mut self, c: char, at: usize) {
        self.text.push(c);
        self.at.extend(at..at + c.len_utf8());
        self.end = self.end.max(at + c.len_utf8());
    }

    /// Whether it is a `NAME=value` assignment.
    pub fn is_assignment(&self) -> bool {
        is_assignment(&self.text)
    }
}

impl AsRef<str> for Word {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// Whether `word` is a `NAME=value` assignment.
pub fn is_assignment(word: &str) -> bool {
    match word.find('=') {
        Some(eq) if eq > 0 => {
            let name = &word[..eq];
            !name.starts_with(|c: char| c.is_ascii_digit())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }
        _ => false,
    }
}

/// What separates one simple command from the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `|` or `|&`
    Pipe,
    /// `||`
    Or,
    /// `&&`
    And,
    /// `;`, `;;`
    Semi,
    /// `&`
    Background,
    /// A newline.
    Newline,
    /// `(`, `)`, `{`-less grouping: a subshell's edges.
    Group,
    /// The end of the line, or of a substitution.
    End,
}

/// A redirection (`>`, `>>`, `2>&1`, `<`, `<<<`, `&>`...) and its target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// The operator as written, file descriptor included (`2>`).
    pub op: String,
    pub start: usize,
    /// The word it redirects to (`None` for `2>&1`-style duplications
    /// whose target is glued, and at the end of a line).
    pub target: Option<Word>,
}

/// One simple command: assignments, then words, with its redirections
/// set apart, and the operator that ended it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimpleCommand {
    pub assignments: Vec<Word>,
    pub words: Vec<Word>,
    pub redirects: Vec<Redirect>,
    pub ended_by: Op,
    /// How many substitutions deep it sits (0: the line itself).
    pub depth: usize,
}

/// Substitutions nest at most this deep; deeper text is read as words.
const MAX_DEPTH: usize = 16;

/// Splits `line` into simple commands, substitutions' commands included
/// (after the command whose word holds them).
pub fn lex(line: &str) -> Vec<SimpleCommand> {
    let mut out = Vec::new();
    Lexer {
        line,
        pos: 0,
        depth: 0,
        out: &mut out,
    }
    .run(None);
    out
}

/// Lexes `w`'s text as a command line of its own (`bash -c '…'`), with
/// every offset mapped back onto the line `w` came from.
pub fn relex(w: &Word) -> Vec<SimpleCommand> {
    let map = |o: usize| w.at.get(o).copied().unwrap_or(w.end);
    let map_word = |x: &mut Word| {
        for a in &mut x.at {
            *a = map(*a);
        }
        let end = if x.end > x.start {
            map(x.end - 1) + 1
        } else {
            map(x.start)
        };
        x.start = map(x.start);
        x.end = end.max(x.start);
    };
    let mut cmds = lex(&w.text);
    for c in &mut cmds {
        for x in c.assignments.iter_mut().chain(c.words.iter_mut()) {
            map_word(x);
        }
        for r in &mut c.redirects {
            r.start = map(r.start);
            if let Some(t) = &mut r.target {
                map_word(t);
            }
        }
    }
    cmds
}

struct Lexer<'a, 'o> {
    line: &'a str,
    pos: usize,
    depth: usize,
    out: &'o mut Vec<SimpleCommand>,
}

#[derive(Default)]
struct Pending {
    assignments: Vec<Word>,
    words: Vec<Word>,
    redirects: Vec<Redirect>,
    /// A redirection waiting for its target word.
    open_redirect: Option<Redirect>,
    /// Commands of substitutions met inside this command's words.
    inner: Vec<SimpleCommand>,
}

impl Lexer<'_, '_> {
    fn peek(&self) -> Option<char> {
        self.line[self.pos..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.line[self.pos..].chars().nth(n)
    }

    fn bump(&mut self) -> Option<(usize, char)> {
        let c = self.peek()?;
        let at = self.pos;
        self.pos += c.len_utf8();
        Some((at, c))
    }

    /// Reads commands until `close` (a `)` or a backquote ending a
    /// substitution) or the end of the line.
    fn run(&mut self, close: Option<char>) {
        let mut cmd = Pending::default();
        let mut cur: Option<Word> = None;
        while let Some(c) = self.peek() {
            if Some(c) == close {
                self.pos += 1;
                self.finish(&mut cmd, &mut cur, Op::End);
                return;
            }
            match c {
                '\n' => {
                    self.pos += 1;
                    self.finish(&mut cmd, &mut cur, Op::Newline);
                }
                c if c.is_whitespace() => {
                    self.pos += c.len_utf8();
                    self.end_word(&mut cmd, &mut cur);
                }
                '|' | '&' | ';' => {
                    let next = self.peek_at(1);
                    let (op, len) = match (c, next) {
                        ('|', Some('|')) => (Op::Or, 2),
                        ('|', Some('&')) => (Op::Pipe, 2),
                        ('|', _) => (Op::Pipe, 1),
                        ('&', Some('&')) => (Op::And, 2),
                        ('&', Some('>')) => {
                            self.redirect(&mut cmd, &mut cur);
                            continue;
                        }
                        ('&', _) => (Op::Background, 1),
                        (_, Some(';')) => (Op::Semi, 2),
                        _ => (Op::Semi, 1),
                    };
                    self.pos += len;
                    self.finish(&mut cmd, &mut cur, op);
                }
                '(' | ')' => {
                    self.pos += 1;
                    self.finish(&mut cmd, &mut cur, Op::Group);
                }
                '<' | '>' if self.peek_at(1) == Some('(') => {
                    // Process substitution: a command whose output is a file.
                    let at = self.pos;
                    self.pos += 2;
                    let w = cur.get_or_insert_with(|| Word::new(at));
                    w.push(c, at);
                    w.push('(', at + 1);
                    self.substitution(&mut cmd, &mut cur, ')');
                }
                '<' | '>' => self.redirect(&mut cmd, &mut cur),
                '#' if cur.is_none() => {
                    while self.peek().is_some_and(|d| d != '\n') {
                        self.bump();
                    }
                }
                _ => self.word_part(&mut cmd, &mut cur),
            }
        }
        self.finish(&mut cmd, &mut cur, Op::End);
    }

    /// One piece of a word: a plain character, an escape, a quoted string
    /// or a substitution.
    fn word_part(&mut self, cmd: &mut Pending, cur: &mut Option<Word>) {
        let Some((at, c)) = self.bump() else {
            return;
        };
        let w = cur.get_or_insert_with(|| Word::new(at));
        match c {
            '\\' => {
                w.quoted = true;
                w.end = at + 1;
                if let Some((j, d)) = self.bump() {
                    if d != '\n' {
                        w.push(d, j);
                    }
                }
            }
            '\'' => {
                w.quoted = true;
                w.end = at + 1;
                while let Some((j, d)) = self.bump() {
                    w.end = j + 1;
                    if d == '\'' {
                        break;
                    }
                    w.push(d, j);
                }
            }
            '$' if self.peek() == Some('\'') => {
                // ANSI-C quoting: escapes are kept as written; close enough
                // for finding programs and values.
                self.pos += 1;
                w.quoted = true;
                while let Some((j, d)) = self.bump() {
                    w.end = j + 1;
                    match d {
                        '\'' => break,
                        '\\' => {
                            if let Some((k, e)) = self.bump() {
                                w.push(e, k);
                                w.end = k + e.len_utf8();
                            }
                        }
                        _ => w.push(d, j),
                    }
                }
            }
            '"' => {
                w.quoted = true;
                w.end = at + 1;
                self.double_quoted(cmd, cur);
            }
            '$' if self.peek() == Some('(') => {
                w.push('$', at);
                if let Some((j, _)) = self.bump() {
                    w.push('(', j);
                }
                self.substitution(cmd, cur, ')');
            }
            '`' => {
                w.push('`', at);
                self.substitution(cmd, cur, '`');
            }
            _ => w.push(c, at),
        }
    }

    fn double_quoted(&mut self, cmd: &mut Pending, cur: &mut Option<Word>) {
        while let Some((j, d)) = self.bump() {
            let Some(w) = cur.as_mut() else {
                return;
            };
            w.end = j + 1;
            match d {
                '"' => return,
                '\\' if matches!(self.peek(), Some('"' | '\\' | '$' | '`' | '\n')) => {
                    if let Some((k, e)) = self.bump() {
                        if e != '\n' {
                            w.push(e, k);
                        }
                    }
                }
                '$' if self.peek() == Some('(') => {
                    w.push('$', j);
                    if let Some((k, _)) = self.bump() {
                        w.push('(', k);
                    }
                    self.substitution(cmd, cur, ')');
                }
                '`' => {
                    w.push('`', j);
                    self.substitution(cmd, cur, '`');
                }
                _ => w.push(d, j),
            }
        }
    }

    /// A substitution's commands, read by a nested lexer; its text is
    /// also copied into the word that holds it.
    fn substitution(&mut self, cmd: &mut Pending, cur: &mut Option<Word>, close: char) {
        let from = self.pos;
        if self.depth >= MAX_DEPTH {
            // Too deep to read as commands: keep it as text.
            while let Some((j, d)) = self.bump() {
                if let Some(w) = cur.as_mut() {
                    w.push(d, j);
                }
                if d == close {
                    break;
                }
            }
            return;
        }
        let mut inner = Vec::new();
        let mut sub = Lexer {
            line: self.line,
            pos: self.pos,
            depth: self.depth + 1,
            out: &mut inner,
        };
        sub.run(Some(close));
        let to = sub.pos;
        self.pos = to;
        if let Some(w) = cur.as_mut() {
            for (j, d) in self.line[from..to].char_indices() {
                w.push(d, from + j);
            }
        }
        cmd.inner.extend(inner);
    }

    fn redirect(&mut self, cmd: &mut Pending, cur: &mut Option<Word>) {
        let start = self.pos;
        let mut op = String::new();
        // A word of digits right before the operator is its descriptor.
        if let Some(w) = cur.take() {
            if !w.quoted && !w.text.is_empty() && w.text.bytes().all(|b| b.is_ascii_digit()) {
                op.push_str(&w.text);
            } else {
                *cur = Some(w);
                self.end_word(cmd, cur);
            }
        }
        while let Some(c) = self.peek() {
            if matches!(c, '<' | '>' | '&' | '|') && op.len() < 6 {
                // `>&2`, `2>&1`: a glued descriptor is part of the operator.
                op.push(c);
                self.pos += 1;
                if c == '&' {
                    while let Some(d) = self.peek().filter(|d| d.is_ascii_digit() || *d == '-') {
                        op.push(d);
                        self.pos += 1;
                    }
                }
            } else {
                break;
            }
        }
        let dup = op.ends_with(|c: char| c.is_ascii_digit() || c == '-') && op.contains(">&");
        let r = Redirect {
            op,
            start,
            target: None,
        };
        if dup {
            cmd.redirects.push(r);
        } else {
            cmd.open_redirect = Some(r);
        }
    }

    fn end_word(&mut self, cmd: &mut Pending, cur: &mut Option<Word>) {
        let Some(w) = cur.take() else {
            return;
        };
        if let Some(mut r) = cmd.open_redirect.take() {
            r.target = Some(w);
            cmd.redirects.push(r);
        } else if cmd.words.is_empty() && w.is_assignment() {
            cmd.assignments.push(w);
        } else {
            cmd.words.push(w);
        }
    }

    fn finish(&mut self, cmd: &mut Pending, cur: &mut Option<Word>, op: Op) {
        self.end_word(cmd, cur);
        let mut c = std::mem::take(cmd);
        if let Some(r) = c.open_redirect.take() {
            c.redirects.push(r);
        }
        if !(c.assignments.is_empty() && c.words.is_empty() && c.redirects.is_empty()) {
            self.out.push(SimpleCommand {
                assignments: c.assignments,
                words: c.words,
                redirects: c.redirects,
                ended_by: op,
                depth: self.depth,
            });
        }
        self.out.extend(c.inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(c: &SimpleCommand) -> Vec<&str> {
        c.words.iter().map(|w| w.text.as_str()).collect()
    }

    #[test]
    fn operators_split_commands() {
        let cmds = lex("a 1 | b && c || d; e & f\ng");
        let v: Vec<_> = cmds.iter().map(|c| (texts(c)[0], c.ended_by)).collect();
        assert_eq!(
            v,
            [
                ("a", Op::Pipe),
                ("b", Op::And),
                ("c", Op::Or),
                ("d", Op::Semi),
                ("e", Op::Background),
                ("f", Op::Newline),
                ("g", Op::End)
            ]
        );
    }

    #[test]
    fn quotes_and_escapes_keep_byte_offsets() {
        let line = r#"echo 'a b' "c\"d" e\ f"#;
        let cmds = lex(line);
        let w = &cmds[0].words;
        assert_eq!(texts(&cmds[0]), ["echo", "a b", "c\"d", "e f"]);
        for word in w {
            for (i, b) in word.text.bytes().enumerate() {
                assert_eq!(line.as_bytes()[word.at[i]], b, "{word:?}");
            }
        }
        assert_eq!(&line[w[1].start..w[1].end], "'a b'");
        assert_eq!(&line[w[2].start..w[2].end], r#""c\"d""#);
        assert!(w[1].quoted && !w[0].quoted);
    }

    #[test]
    fn assignments_and_redirections_are_set_apart() {
        let cmds = lex("A=1 B='x y' cmd --k=v > out 2>&1 <<< word");
        let c = &cmds[0];
        assert_eq!(c.assignments.len(), 2);
        assert_eq!(texts(c), ["cmd", "--k=v"]);
        let ops: Vec<_> = c.redirects.iter().map(|r| r.op.as_str()).collect();
        assert_eq!(ops, [">", "2>&1", "<<<"]);
        assert_eq!(c.redirects[0].target.as_ref().unwrap().text, "out");
        assert_eq!(c.redirects[2].target.as_ref().unwrap().text, "word");
    }

    #[test]
    fn substitutions_are_commands_of_their_own() {
        let line = r#"echo "x $(pass show db) y" `gpg -d f` <(op read z)"#;
        let cmds = lex(line);
        let firsts: Vec<_> = cmds.iter().map(|c| texts(c)[0]).collect();
        assert_eq!(firsts, ["echo", "pass", "gpg", "op"]);
        assert_eq!(cmds[0].words[1].text, "x $(pass show db) y");
        assert_eq!(cmds[1].depth, 1);
        let pass = &cmds[1].words[0];
        assert_eq!(&line[pass.start..pass.end], "pass");
    }

    #[test]
    fn comments_and_broken_lines_do_not_fail() {
        assert_eq!(texts(&lex("ls # rm -rf /")[0]), ["ls"]);
        assert_eq!(lex("ls # rm").len(), 1);
        for bad in [
            "echo 'open",
            "echo \"open $(x",
            ")",
            "a |",
            "\\",
            "$(",
            "`",
            "2>",
        ] {
            let _ = lex(bad);
        }
    }

    #[test]
    fn relexed_words_map_onto_the_line() {
        let line = r#"bash -c 'sudo -u x "pass" show'"#;
        let cmds = lex(line);
        let inner = relex(&cmds[0].words[2]);
        let pass = &inner[0].words[3];
        assert_eq!(pass.text, "pass");
        assert_eq!(&line[pass.at[0]..pass.at[3] + 1], "pass");
    }
}
