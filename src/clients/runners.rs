//! What `candor run` understands of a command: whether it tests or builds,
//! which runner it is, and the pass/fail counts the runner prints.
//!
//! Counts come only from summary lines the runners really print (cargo's
//! `test result:` and nextest's `Summary`, pytest's closing line, `go test`'s
//! `--- PASS/FAIL/SKIP` lines, and the summaries of jest, mocha, vitest and
//! node's test runner behind `npm test`). When none is seen the counts are
//! left out rather than guessed.

/// A test or a build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    Test,
    Build,
}

/// Which runner's output to read; the names are the registry's `RUNNERS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runner {
    Cargo,
    Pytest,
    Go,
    Npm,
    Other,
}

impl Runner {
    pub fn name(self) -> &'static str {
        match self {
            Runner::Cargo => "cargo",
            Runner::Pytest => "pytest",
            Runner::Go => "go",
            Runner::Npm => "npm",
            Runner::Other => "other",
        }
    }
}

fn base(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// Classifies a command line (already split into words).
pub fn classify(argv: &[String]) -> (RunKind, Runner) {
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    let prog = words.first().map(|w| base(w)).unwrap_or("");
    let sub = |i: usize| words.get(i).copied().unwrap_or("");
    // A word naming tests: `test`, `tests`, `test:unit`, `scripts/test.sh`,
    // `spec` (but not `latest` or `contest`).
    let testish = words.iter().skip(1).any(|w| {
        w.to_ascii_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|part| matches!(part, "test" | "tests" | "spec" | "specs" | "check"))
    });
    match prog {
        "cargo" => {
            let s = words
                .iter()
                .skip(1)
                .find(|w| !w.starts_with(['-', '+']))
                .copied();
            match s {
                Some("test" | "t" | "nextest" | "bench") => (RunKind::Test, Runner::Cargo),
                _ => (RunKind::Build, Runner::Cargo),
            }
        }
        "pytest" | "py.test" => (RunKind::Test, Runner::Pytest),
        p if p.starts_with("python") && sub(1) == "-m" && sub(2) == "pytest" => {
            (RunKind::Test, Runner::Pytest)
        }
        "go" if sub(1) == "test" => (RunKind::Test, Runner::Go),
        "go" => (RunKind::Build, Runner::Go),
        "npm" | "yarn" | "pnpm" | "npx" => {
            let runner = |w: &str| matches!(base(w), "jest" | "vitest" | "mocha" | "ava" | "tap");
            if testish || matches!(sub(1), "t" | "tst") || runner(sub(1)) {
                (RunKind::Test, Runner::Npm)
            } else {
                (RunKind::Build, Runner::Npm)
            }
        }
        "jest" | "vitest" | "mocha" => (RunKind::Test, Runner::Npm),
        _ if testish || base(prog).contains("test") => (RunKind::Test, Runner::Other),
        _ => (RunKind::Build, Runner::Other),
    }
}

/// Pass/fail counts read from a runner's output, summed over summaries
/// (a workspace's `cargo test` prints one per test binary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: Option<i64>,
    pub failed: Option<i64>,
    pub skipped: Option<i64>,
}

fn add(slot: &mut Option<i64>, n: i64) {
    *slot = Some(slot.unwrap_or(0) + n);
}

/// `N word` pairs in a summary such as `3 failed, 10 passed in 0.1s`.
fn numbered(text: &str) -> Vec<(i64, String)> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '|' | '(' | ')' | '='))
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .filter_map(|w| {
            w[0].parse::<i64>().ok().map(|n| {
                (
                    n,
                    w[1].trim_end_matches([',', '.', ';']).to_ascii_lowercase(),
                )
            })
        })
        .collect()
}

/// Removes ANSI colour and cursor sequences.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() || c == '~' {
                        break;
                    }
                }
            }
            continue;
        }
        if c != '\r' {
            out.push(c);
        }
    }
    out
}

impl Counts {
    /// Reads one line of output.
    pub fn line(&mut self, runner: Runner, raw: &str) {
        let line = strip_ansi(raw);
        let t = line.trim();
        match runner {
            Runner::Cargo => {
                if let Some(rest) = t.strip_prefix("test result:") {
                    for (n, w) in numbered(rest) {
                        match w.as_str() {
                            "passed" => add(&mut self.passed, n),
                            "failed" => add(&mut self.failed, n),
                            "ignored" => add(&mut self.skipped, n),
                            _ => {}
                        }
                    }
                } else if t.starts_with("Summary [") && t.contains("tests run:") {
                    // nextest: "Summary [ 1.2s] 10 tests run: 8 passed, 2 failed, 1 skipped"
                    let rest = t.split_once("tests run:").map_or("", |x| x.1);
                    self.tally(rest, &["passed"], &["failed", "timed"], &["skipped"]);
                }
            }
            Runner::Pytest => {
                // "==== 1 failed, 3 passed, 2 skipped, 1 error in 0.12s ====",
                // or without the rule under -q.
                let core = t.trim_matches(|c| c == '=' || c == ' ');
                let summary = core.rsplit_once(" in ").filter(|(items, time)| {
                    time.starts_with(|c: char| c.is_ascii_digit())
                        && items.split(", ").all(|item| {
                            item.split_once(' ').is_some_and(|(n, w)| {
                                n.parse::<i64>().is_ok()
                                    && w.chars().all(|c| c.is_ascii_lowercase())
                            })
                        })
                });
                if let Some((items, _)) = summary {
                    self.tally(
                        items,
                        &["passed"],
                        &["failed", "error", "errors"],
                        &["skipped", "xfailed", "deselected"],
                    );
                }
            }
            // Subtests are indented under their parent; only top-level
            // tests count, as `go test` itself counts them.
            Runner::Go if !line.starts_with("--- ") => {}
            Runner::Go => {
                if t.starts_with("--- PASS:") {
                    add(&mut self.passed, 1);
                } else if t.starts_with("--- FAIL:") {
                    add(&mut self.failed, 1);
                } else if t.starts_with("--- SKIP:") {
                    add(&mut self.skipped, 1);
                }
            }
            Runner::Npm | Runner::Other => {
                if let Some(rest) = t.strip_prefix("Tests:") {
                    // jest: "Tests:       1 failed, 5 passed, 6 total"
                    self.tally(rest, &["passed"], &["failed"], &["skipped", "todo"]);
                } else if let Some(rest) = t.strip_prefix("Tests ") {
                    // vitest: "Tests  1 failed | 5 passed (6)"
                    self.tally(rest, &["passed"], &["failed"], &["skipped", "todo"]);
                } else if let Some(rest) = t.strip_prefix("ℹ ") {
                    // node --test's spec reporter (the default on a terminal
                    // and, from Node 23, everywhere): "ℹ pass 3".
                    self.line(runner, &format!("# {rest}"));
                } else if let Some(n) = t.strip_prefix("# pass ") {
                    // node --test / TAP
                    add(&mut self.passed, n.trim().parse().unwrap_or(0));
                } else if let Some(n) = t.strip_prefix("# fail ") {
                    add(&mut self.failed, n.trim().parse().unwrap_or(0));
                } else if let Some(n) = t.strip_prefix("# skipped ") {
                    add(&mut self.skipped, n.trim().parse().unwrap_or(0));
                } else if let [(n, w)] = numbered(t).as_slice() {
                    // mocha: "  5 passing (12ms)", "  1 failing", "  2 pending"
                    let whole = t.split_whitespace().count() <= 3;
                    match w.as_str() {
                        "passing" if whole => add(&mut self.passed, *n),
                        "failing" if whole => add(&mut self.failed, *n),
                        "pending" if whole => add(&mut self.skipped, *n),
                        _ => {}
                    }
                } else if runner == Runner::Other {
                    // A test script may run any of the above.
                    for r in [Runner::Cargo, Runner::Pytest, Runner::Go] {
                        self.line(r, t);
                    }
                }
            }
        }
    }

    fn tally(&mut self, text: &str, pass: &[&str], fail: &[&str], skip: &[&str]) {
        for (n, w) in numbered(text) {
            if pass.contains(&w.as_str()) {
                add(&mut self.passed, n);
            } else if fail.contains(&w.as_str()) {
                add(&mut self.failed, n);
            } else if skip.contains(&w.as_str()) {
                add(&mut self.skipped, n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn counts(runner: Runner, text: &str) -> Counts {
        let mut c = Counts::default();
        for l in text.lines() {
            c.line(runner, l);
        }
        c
    }

    #[test]
    fn commands_are_classified() {
        use RunKind::*;
        for (cmd, want) in [
            ("cargo test --lib", (Test, Runner::Cargo)),
            ("cargo +nightly nextest run", (Test, Runner::Cargo)),
            ("cargo build --release", (Build, Runner::Cargo)),
            ("cargo clippy", (Build, Runner::Cargo)),
            ("pytest -q tests/", (Test, Runner::Pytest)),
            ("python3 -m pytest", (Test, Runner::Pytest)),
            ("go test ./...", (Test, Runner::Go)),
            ("go build ./cmd/x", (Build, Runner::Go)),
            ("npm test", (Test, Runner::Npm)),
            ("npm run test:unit", (Test, Runner::Npm)),
            ("npm run build", (Build, Runner::Npm)),
            ("make test", (Test, Runner::Other)),
            ("./scripts/test.sh", (Test, Runner::Other)),
            ("make", (Build, Runner::Other)),
            ("npx jest --ci", (Test, Runner::Npm)),
            ("npx vitest run", (Test, Runner::Npm)),
            ("docker pull node:latest", (Build, Runner::Other)),
        ] {
            assert_eq!(classify(&argv(cmd)), want, "{cmd}");
        }
    }

    #[test]
    fn cargo_summaries_are_summed() {
        let c = counts(
            Runner::Cargo,
            "running 3 tests\ntest a ... ok\n\
             test result: FAILED. 2 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n\
             \x1b[32mtest result: ok.\x1b[0m 5 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n",
        );
        assert_eq!((c.passed, c.failed, c.skipped), (Some(7), Some(1), Some(1)));
        let n = counts(
            Runner::Cargo,
            "     Summary [   1.234s] 10 tests run: 8 passed, 2 failed, 1 skipped",
        );
        assert_eq!((n.passed, n.failed, n.skipped), (Some(8), Some(2), Some(1)));
    }

    #[test]
    fn pytest_go_and_npm_runners() {
        let p = counts(
            Runner::Pytest,
            "tests/test_a.py ..F\n=========== 1 failed, 2 passed, 3 skipped, 1 error in 0.12s ===========",
        );
        assert_eq!((p.passed, p.failed, p.skipped), (Some(2), Some(2), Some(3)));
        let q = counts(
            Runner::Pytest,
            "FAILED t.py::c - assert 1 in 2\n1 failed, 1 passed, 1 skipped in 0.01s",
        );
        assert_eq!((q.passed, q.failed, q.skipped), (Some(1), Some(1), Some(1)));
        let g = counts(
            Runner::Go,
            "=== RUN   TestA\n--- PASS: TestA (0.00s)\n--- FAIL: TestB (0.00s)\n    --- FAIL: TestB/sub (0.00s)\n--- SKIP: TestC\nFAIL\n",
        );
        assert_eq!((g.passed, g.failed, g.skipped), (Some(1), Some(1), Some(1)));
        let jest = counts(Runner::Npm, "Tests:       1 failed, 5 passed, 6 total");
        assert_eq!((jest.passed, jest.failed), (Some(5), Some(1)));
        let vitest = counts(Runner::Npm, "      Tests  1 failed | 5 passed (6)");
        assert_eq!((vitest.passed, vitest.failed), (Some(5), Some(1)));
        let node = counts(Runner::Npm, "# tests 4\n# pass 3\n# fail 1\n# skipped 0");
        assert_eq!(
            (node.passed, node.failed, node.skipped),
            (Some(3), Some(1), Some(0))
        );
        let mocha = counts(Runner::Npm, "  5 passing (12ms)\n  1 failing\n");
        assert_eq!((mocha.passed, mocha.failed), (Some(5), Some(1)));
        let none = counts(Runner::Npm, "built in 3 files\n");
        assert_eq!(none, Counts::default());
    }
}
