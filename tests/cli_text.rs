//! What people who live in a terminal get: shell completions that bash,
//! zsh and fish load, a manual page `man -l` renders, and `stats` and
//! `status` in human units with aligned columns while their `--json` stays
//! byte for byte what it was.

mod common;

use std::process::Command;

use common::*;

fn have(cmd: &str) -> bool {
    common::x11::have(cmd)
}

#[test]
fn bash_sources_the_completion_script_and_completes_subcommands() {
    if !have("bash") {
        return skip_or_fail("bash is not installed");
    }
    let t = TestStore::new();
    let script = t.tmp.path().join("candor.bash");
    std::fs::write(&script, t.candor_ok(&["completions", "bash"])).unwrap();
    // Source it, then ask the completion function what follows `candor re`.
    let probe = format!(
        r#"set -e; source '{}'; complete -p candor;
COMP_WORDS=(candor re); COMP_CWORD=1; COMP_LINE='candor re'; COMP_POINT=9;
_candor candor re candor; printf '%s\n' "${{COMPREPLY[@]}}""#,
        script.display()
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &probe])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.starts_with("complete ") && l.contains("-F _candor candor")),
        "{text}"
    );
    let words: Vec<&str> = text.lines().skip(1).collect();
    for w in ["report", "resume"] {
        assert!(words.contains(&w), "{w} not offered: {words:?}");
    }
}

#[test]
fn zsh_and_fish_scripts_load() {
    let t = TestStore::new();
    let zsh = t.candor_ok(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef candor"), "{}", &zsh[..40]);
    assert!(zsh.contains("report") && zsh.contains("--exports-dir"));
    if have("zsh") {
        let f = t.tmp.path().join("_candor");
        std::fs::write(&f, &zsh).unwrap();
        let out = Command::new("zsh")
            .args([
                "-f",
                "-c",
                &format!("autoload -Uz compinit; compinit -u; source {}", f.display()),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "zsh: {}", stderr(&out));
    } else {
        skip_or_fail("zsh is not installed");
    }
    let fish = t.candor_ok(&["completions", "fish"]);
    assert!(fish.contains("complete -c candor"), "{fish}");
    assert!(fish.contains("-a \"report\""), "{fish}");
    // An unknown shell is refused by the argument parser.
    assert!(!t.candor(&["completions", "tcsh"]).status.success());
}

#[test]
fn man_renders_the_page_with_every_command() {
    if !have("man") {
        return skip_or_fail("man is not installed (scripts/setup.sh installs man-db)");
    }
    let t = TestStore::new();
    let page = t.tmp.path().join("candor.1");
    std::fs::write(&page, t.candor_ok(&["man"])).unwrap();
    let out = Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(&page)
        .env("MANWIDTH", "100")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for w in [
        "NAME",
        "SYNOPSIS",
        "candor",
        "Consent-first",
        "report",
        "audit",
        "completions",
    ] {
        assert!(
            text.contains(w),
            "{w} missing from the rendered page:\n{text}"
        );
    }
    // One page per command, into a folder.
    let dir = t.tmp.path().join("man1");
    t.candor_ok(&["man", "--out-dir", dir.to_str().unwrap()]);
    for p in ["candor.1", "candor-report.1", "candor-audit.1"] {
        assert!(dir.join(p).exists(), "{p} not written");
    }
}

/// A store with a fixed content: captured events at fixed times (recent
/// enough for retention), and a gap.
fn fixed_store() -> TestStore {
    let t = TestStore::new();
    let base = (now_ns() / DAY_NS - 1) * DAY_NS;
    let mut events = Vec::new();
    for i in 0..1_500 {
        events.push(key_down(base + i * 1_000_000, "a"));
    }
    for i in 0..20 {
        events.push(mouse_move(base + 2_000_000_000 + i * 1_000_000, 5, 6));
    }
    capture(&t, events);
    t.open()
        .conn()
        .execute(
            "INSERT INTO gaps(start_ns, end_ns, reason, count, lost_kind) VALUES (?1, ?2, 'dropped', 1234, 'key.down')",
            rusqlite::params![base + 5_000_000_000, base + 65_000_000_000],
        )
        .unwrap();
    t
}

#[test]
fn stats_prints_human_units_in_aligned_columns() {
    let t = fixed_store();
    let text = t.candor_ok(&["stats"]);
    // Thousands separators and human durations.
    assert!(text.contains("events     1,520 from"), "{text}");
    let kind_rows: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "by kind")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(kind_rows.len(), 3, "{text}");
    // Every number ends in the same column as its header.
    let end_of = |l: &str, word: &str| l.find(word).map(|i| i + word.len());
    let col = end_of(kind_rows[0], "events").unwrap();
    for row in &kind_rows[1..] {
        let n = row.split_whitespace().nth(1).unwrap();
        assert_eq!(end_of(row, n), Some(col), "{text}");
    }
    assert!(kind_rows.iter().any(|r| r.contains(" 1,500 ")), "{text}");
    let gap = text
        .lines()
        .find(|l| l.starts_with("  dropped"))
        .expect("gap row");
    assert_eq!(
        gap.split_whitespace().collect::<Vec<_>>(),
        ["dropped", "1", "1,234", "1m"],
        "{text}"
    );
}

/// The JSON with the few values that differ between stores made the same
/// way (paths, sizes on disk, times) replaced, byte for byte otherwise.
fn normalized_stats_json(t: &TestStore) -> String {
    let raw = t.candor_ok(&["stats", "--json"]);
    let re = regex::Regex::new(
        r#"(?m)^(\s*"(data_dir|database_bytes|first|last|first_ns|last_ns|blob_bytes_stored|key_location)": ).*?(,?)$"#,
    )
    .unwrap();
    re.replace_all(&raw, "${1}\"<varies>\"${3}").into_owned()
}

#[test]
fn stats_json_stays_byte_stable() {
    let t = fixed_store();
    let first = t.candor_ok(&["stats", "--json"]);
    assert_eq!(first, t.candor_ok(&["stats", "--json"]), "two runs differ");
    let got = normalized_stats_json(&t);
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/stats.json");
    if std::env::var_os("BLESS_GOLDEN").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden).expect("tests/golden/stats.json");
    assert_eq!(
        got, want,
        "`candor stats --json` changed (BLESS_GOLDEN=1 rewrites the golden file)"
    );
}

#[test]
fn status_aligns_its_columns_and_keeps_its_json() {
    let t = TestStore::new();
    grant(&t, "keys.timing,mouse");
    let (mut d, _) = start_daemon(&t, None, &[]);
    let text = t.candor_ok(&["status"]);
    let json: serde_json::Value =
        serde_json::from_str(&t.candor_ok(&["status", "--json"])).unwrap();
    Command::new("kill")
        .arg(d.id().to_string())
        .status()
        .unwrap();
    exited(&mut d);
    // Sources: their states start in one column.
    let sources: Vec<&str> = text.lines().filter(|l| l.starts_with("source ")).collect();
    assert!(sources.len() >= 3, "{text}");
    let state_col = |l: &str| {
        let rest = &l["source     ".len()..];
        let name_end = rest.find(' ')?;
        let gap = rest[name_end..].find(|c: char| c != ' ')?;
        Some(name_end + gap)
    };
    let col = state_col(sources[0]);
    assert!(sources.iter().all(|l| state_col(l) == col), "{text}");
    // Counters: one per row, right-aligned to one column.
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("events"))
        .take_while(|l| l.starts_with("events") || l.starts_with("  "))
        .collect();
    assert_eq!(block.len(), 5, "{text}");
    assert!(block.iter().all(|l| l.len() == block[0].len()), "{text}");
    assert!(block[2].contains("mouse moves coalesced"), "{text}");
    // The JSON keeps its fields.
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    for k in ["uptime_s", "consent", "paused", "sources", "writer"] {
        assert!(keys.iter().any(|x| *x == k), "{k} missing: {keys:?}");
    }
    for k in ["received", "written", "coalesced", "dropped", "gaps"] {
        assert!(json["writer"][k].is_u64(), "writer.{k}: {json}");
    }
}
