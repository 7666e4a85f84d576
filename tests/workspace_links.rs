//! Candor's "git ignores this path" against git's own answer: a generated
//! tree (seeded, so every run builds the same one) of a few hundred paths,
//! with .gitignore files at many levels (above the watched root too),
//! `$GIT_DIR/info/exclude`, `core.excludesFile` from the repository's config
//! and git's default one, a nested repository and a submodule-like one, is
//! judged path by path by `Workspace::ignored` and by `git check-ignore`.
//!
//! This binary holds one test on purpose: it points git's global config at
//! files of its own through the process environment, which Candor's own
//! `git config` lookups and the `git check-ignore` runs both inherit.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use candor::capture::workspace::Workspaces;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

/// File and directory names: ordinary ones, and ones that need git's
/// escapes (`#`, `!`, a trailing space) or look like glob syntax.
const NAMES: &[&str] = &[
    "src",
    "lib",
    "build",
    "target",
    "docs",
    "deep",
    "a",
    "b",
    "x",
    "x.local.yml",
    "app.local.yml",
    "main.rs",
    "notes.md",
    "keep.txt",
    "data.json",
    "a.log",
    "debug.log",
    "Foo.TXT",
    "#hash",
    "!bang",
    "trail ",
    "sp ace",
    "[x]",
    "node_modules",
    "cache",
    "out.o",
    "tmp.swp",
    "README",
];

fn run_git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What `git check-ignore` says of `rels` (relative to `top`): the set it
/// calls ignored. The index is not consulted, so tracking plays no part.
fn git_ignored(top: &Path, rels: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(top)
        .args(["check-ignore", "--no-index", "--stdin", "-z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = Vec::new();
    for r in rels {
        input.extend_from_slice(r.as_os_str().as_encoded_bytes());
        input.push(0);
    }
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    // 0: some ignored, 1: none; anything else is git failing.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "git check-ignore in {}: {}",
        top.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| PathBuf::from(String::from_utf8(s.to_vec()).unwrap()))
        .collect()
}

/// A name as a gitignore pattern that matches it literally.
fn literal(name: &str) -> String {
    let mut s = String::new();
    for (i, c) in name.chars().enumerate() {
        match c {
            '[' | ']' | '*' | '?' | '\\' => {
                s.push('\\');
                s.push(c);
            }
            '#' | '!' if i == 0 => {
                s.push('\\');
                s.push(c);
            }
            ' ' if i == name.len() - 1 => s.push_str("\\ "),
            _ => s.push(c),
        }
    }
    s
}

/// One random gitignore line for a file in `dir`, built from what is
/// under `dir` (`under`: paths relative to it), so that lines often match.
/// `skip` leading components lead down to the workspace root (a file above
/// it): a `dir/**` form on those would ignore the whole root.
fn pattern(rng: &mut StdRng, under: &[(PathBuf, bool)], skip: usize) -> String {
    let (rel, is_dir) = under.choose(rng).unwrap().clone();
    let comps: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let name = comps.last().unwrap().clone();
    let lit = literal(&name);
    let full: Vec<String> = comps.iter().map(|c| literal(c)).collect();
    let full = full.join("/");
    let mut line = match rng.random_range(0..19) {
        0 | 1 => lit.clone(),
        2 => match name.rsplit_once('.') {
            Some((_, ext)) if !ext.contains(' ') => format!("*.{ext}"),
            _ => format!("{lit}*"),
        },
        3 => format!("{lit}/"),
        4 => format!("/{full}"),
        5 => format!("/{full}{}", if is_dir { "/" } else { "" }),
        6 => format!("**/{lit}"),
        7 if comps.len() > skip + 1 => format!("{}/**", literal(&comps[skip])),
        8 if comps.len() > skip + 1 => format!("{}/**/{lit}", literal(&comps[skip])),
        9 => {
            // A character class on the first letter, or its negation.
            let mut chars = lit.chars();
            match chars.next() {
                Some(c) if c.is_ascii_alphanumeric() => {
                    if rng.random_bool(0.5) {
                        format!("[{c}q]{}", chars.as_str())
                    } else {
                        format!("[!q-z]{}", chars.as_str())
                    }
                }
                _ => format!("{lit}/"),
            }
        }
        10 => {
            let mut chars = lit.chars();
            match chars.next() {
                Some(c) if c.is_ascii_alphanumeric() => format!("?{}", chars.as_str()),
                _ => lit.clone(),
            }
        }
        11 => format!("{lit}   "),
        12 => format!("# {lit}"),
        // Everything, rarely: it leaves little for the other lines to do.
        13 if rng.random_bool(0.15) => "*".into(),
        14 => "!*/".into(),
        15 => format!("**/{full}"),
        // Rarer forms: POSIX classes, doubled stars inside a name, a
        // trailing `/**/`, a lone backslash.
        16 => [
            "[[:alpha:]]*.md",
            "*[[:digit:]]*",
            "[[:upper:]]oo.TXT",
            "[[:space:]]*",
            "*[[:punct:]]*",
        ]
        .choose(rng)
        .unwrap()
        .to_string(),
        17 => [
            "d**p",
            "**.log",
            "src/**/",
            "a/**/**/x",
            "**/**",
            "out\\",
            "\\x",
            "[a-c]*",
            "[]x]",
            "[!]a]*",
            "*.[jm]s*",
        ]
        .choose(rng)
        .unwrap()
        .to_string(),
        _ => format!("{full}{}", if is_dir { "/" } else { "" }),
    };
    if rng.random_bool(0.3) && !line.starts_with('#') {
        line.insert(0, '!');
    }
    line
}

/// Writes 2 to 8 random lines to the ignore file `file`, whose patterns
/// are relative to `dir`. The workspace root
/// is never a target: a rule on it ignores all.
fn write_ignore(rng: &mut StdRng, file: &Path, dir: &Path, all: &[(PathBuf, bool)], root: &Path) {
    let skip = root.strip_prefix(dir).map_or(0, |r| r.components().count());
    let under: Vec<(PathBuf, bool)> = all
        .iter()
        .filter(|(p, _)| p != root)
        .filter_map(|(p, d)| {
            p.strip_prefix(dir)
                .ok()
                .filter(|r| !r.as_os_str().is_empty())
                .map(|r| (r.to_owned(), *d))
        })
        .collect();
    if under.is_empty() {
        return;
    }
    let n = rng.random_range(2..9);
    let lines: Vec<String> = (0..n).map(|_| pattern(rng, &under, skip)).collect();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, lines.join("\n") + "\n").unwrap();
}

/// Builds random directories and files under `dir`, returning every path
/// made (absolute) and whether it is a directory.
fn grow(rng: &mut StdRng, dir: &Path, depth: usize, out: &mut Vec<(PathBuf, bool)>) {
    for _ in 0..rng.random_range(5..12) {
        let name = *NAMES.choose(rng).unwrap();
        let p = dir.join(name);
        if p.exists() {
            continue;
        }
        if depth < 3 && rng.random_bool(0.45) {
            std::fs::create_dir(&p).unwrap();
            out.push((p.clone(), true));
            grow(rng, &p, depth + 1, out);
        } else {
            std::fs::write(&p, "x\n").unwrap();
            out.push((p, false));
        }
    }
}

/// What one generated tree showed: how many paths, how many git ignores,
/// and the paths on which Candor and git disagree.
struct Verdicts {
    paths: usize,
    ignored: usize,
    leaks: Vec<String>,
    extra: Vec<String>,
}

#[test]
fn candor_ignores_exactly_what_git_ignores() {
    // SEED=n tries one other tree; KEEP=1 leaves trees on disk to look at.
    let seeds: Vec<u64> = match std::env::var("SEED") {
        Ok(s) => vec![s.parse().unwrap()],
        Err(_) => vec![1, 2, 4, 6, 7],
    };
    let (mut paths, mut ignored) = (0, 0);
    for seed in seeds {
        let v = compare(seed);
        eprintln!(
            "seed {seed}: {} paths, {} ignored by git, {} leaks, {} extra",
            v.paths,
            v.ignored,
            v.leaks.len(),
            v.extra.len()
        );
        assert!(
            v.leaks.is_empty() && v.extra.is_empty(),
            "seed {seed}: {} paths git ignores that Candor would record: {:#?}\n\
             {} paths Candor ignores that git does not: {:#?}",
            v.leaks.len(),
            v.leaks,
            v.extra.len(),
            v.extra
        );
        paths += v.paths;
        ignored += v.ignored;
    }
    // Both answers must have been common enough to tell the sides apart.
    assert!(
        ignored >= 100 && paths - ignored >= 100,
        "{paths} paths, {ignored} ignored"
    );
}

/// Builds the tree for `seed` and judges every path in it both ways.
fn compare(seed: u64) -> Verdicts {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    if std::env::var_os("KEEP").is_some() {
        eprintln!("tree kept in {}", base.display());
        std::mem::forget(tmp);
    }
    // Git's global config and default excludes file, the machine's own
    // left out: an empty global config, so git's default
    // `$XDG_CONFIG_HOME/git/ignore` is the global excludes file.
    let xdg = base.join("xdg");
    std::fs::create_dir_all(xdg.join("git")).unwrap();
    std::fs::write(base.join("gitconfig"), "").unwrap();
    std::env::set_var("GIT_CONFIG_GLOBAL", base.join("gitconfig"));
    std::env::set_var("GIT_CONFIG_NOSYSTEM", "1");
    std::env::set_var("XDG_CONFIG_HOME", &xdg);

    let outer = base.join("outer");
    let root = outer.join("up/ws");
    std::fs::create_dir_all(&root).unwrap();
    run_git(&outer, &["init", "-q"]);
    // A nested repository and a submodule-like one (its git directory kept
    // in the outer repository's `.git/modules`, named by a relative
    // `gitdir:` file), each with its own rules.
    let nested = root.join("nested");
    let sub = root.join("sub");
    std::fs::create_dir_all(&nested).unwrap();
    run_git(&nested, &["init", "-q"]);
    std::fs::create_dir_all(&sub).unwrap();
    let modules = outer.join(".git/modules/sub");
    std::fs::create_dir_all(modules.parent().unwrap()).unwrap();
    run_git(
        &base,
        &[
            "init",
            "-q",
            "--separate-git-dir",
            modules.to_str().unwrap(),
            sub.to_str().unwrap(),
        ],
    );
    std::fs::write(sub.join(".git"), "gitdir: ../../../.git/modules/sub\n").unwrap();
    run_git(&modules, &["config", "core.worktree", "../../../up/ws/sub"]);

    let mut rng = StdRng::seed_from_u64(seed);
    let mut all = Vec::new();
    grow(&mut rng, &root, 0, &mut all);
    grow(&mut rng, &nested, 1, &mut all);
    grow(&mut rng, &sub, 1, &mut all);
    // And a few siblings above the root, so rules above it have something
    // to aim at besides the root's own tree.
    std::fs::write(outer.join("up/x.local.yml"), "x\n").unwrap();
    all.push((root.clone(), true));
    all.push((nested.clone(), true));
    all.push((sub.clone(), true));
    let dirs: Vec<PathBuf> = all
        .iter()
        .filter(|(_, d)| *d)
        .map(|(p, _)| p.clone())
        .collect();
    for d in [outer.clone(), outer.join("up")].iter().chain(dirs.iter()) {
        if d == &root || d == &nested || d == &sub || rng.random_bool(0.5) {
            write_ignore(&mut rng, &d.join(".gitignore"), d, &all, &root);
        }
    }
    write_ignore(
        &mut rng,
        &outer.join(".git/info/exclude"),
        &outer,
        &all,
        &root,
    );
    write_ignore(
        &mut rng,
        &nested.join(".git/info/exclude"),
        &nested,
        &all,
        &root,
    );
    write_ignore(&mut rng, &modules.join("info/exclude"), &sub, &all, &root);
    // The outer repository names its excludes file in its own config; the
    // nested ones fall back to git's default, which the outer one's
    // setting overrides.
    let local = base.join("local-excludes");
    write_ignore(&mut rng, &local, &outer, &all, &root);
    run_git(
        &outer,
        &["config", "core.excludesFile", local.to_str().unwrap()],
    );
    write_ignore(&mut rng, &xdg.join("git/ignore"), &nested, &all, &root);
    // Rules above the root aimed squarely at files inside it.
    let mut top_rules = std::fs::read_to_string(outer.join(".gitignore")).unwrap_or_default();
    top_rules.push_str("*.local.yml\n");
    std::fs::write(outer.join(".gitignore"), top_rules).unwrap();

    let paths: Vec<(PathBuf, bool)> = all.iter().filter(|(p, _)| p != &root).cloned().collect();
    assert!(paths.len() >= 200, "only {} paths", paths.len());

    // Git's answers: each path asked of the repository it is in; a path in
    // a nested repository is also ignored when the outer repository ignores
    // that repository's directory (git never descends into it then).
    let repo_of = |p: &Path| -> PathBuf {
        [&nested, &sub]
            .into_iter()
            .find(|r| p.starts_with(r) && p != r.as_path())
            .cloned()
            .unwrap_or_else(|| outer.clone())
    };
    let mut truth = BTreeSet::new();
    for top in [&outer, &nested, &sub] {
        let rels: Vec<PathBuf> = paths
            .iter()
            .filter(|(p, _)| repo_of(p) == *top)
            .map(|(p, _)| p.strip_prefix(top).unwrap().to_owned())
            .collect();
        for r in git_ignored(top, &rels) {
            truth.insert(top.join(r));
        }
    }
    let truth: BTreeSet<PathBuf> = paths
        .iter()
        .map(|(p, _)| p.clone())
        .filter(|p| {
            truth.contains(p)
                || [&nested, &sub]
                    .into_iter()
                    .any(|r| p.starts_with(r) && truth.contains(r))
        })
        .collect();

    let (mut ws, _) = Workspaces::from_config(std::slice::from_ref(&root), &[]).unwrap();
    let started = std::time::Instant::now();
    let mut leaks = Vec::new();
    let mut extra = Vec::new();
    for (p, is_dir) in &paths {
        let ours = ws.roots[0].ignored(p, *is_dir);
        let git = truth.contains(p);
        let rel = p.strip_prefix(&root).unwrap().display().to_string();
        if git && !ours {
            leaks.push(rel);
        } else if ours && !git {
            extra.push(rel);
        }
    }
    let cold = started.elapsed() / paths.len() as u32;
    // Again, with the matchers and excludes files known: the daemon's case.
    let started = std::time::Instant::now();
    for (p, is_dir) in &paths {
        ws.roots[0].ignored(p, *is_dir);
    }
    let warm = started.elapsed() / paths.len() as u32;
    eprintln!("seed {seed}: {cold:?} a path at first, then {warm:?}");
    // Whatever the rules say, git's own directories are never recorded.
    for p in [
        nested.join(".git/config"),
        sub.join(".git"),
        root.join(".git/HEAD"),
        outer.join("up/ws/src/.git"),
    ] {
        if !ws.roots[0].ignored(&p, false) {
            leaks.push(format!("{} (git's own)", p.display()));
        }
    }
    Verdicts {
        paths: paths.len(),
        ignored: truth.len(),
        leaks,
        extra,
    }
}
