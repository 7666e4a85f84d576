//! `candor-export redact` as a user runs it: the real binary, stdin in,
//! stdout out, in plain and `--jsonl` modes, including every way a JSONL
//! input can be wrong (which must leave stdout empty and exit non-zero).

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_candor-export"))
        .args(args)
        // Keep the test independent of who runs it: no OS identity unless
        // a test asks for it.
        .env_remove("CANDOR_DATA_DIR")
        .env_remove("CANDOR_CONFIG")
        .env("CANDOR_CONFIG_DIR", "/nonexistent-candor-config")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("candor-export runs");
    // A run that fails early (a bad flag or config) may exit before
    // reading stdin; its exit status and stderr tell, not a broken pipe.
    let written = child.stdin.take().expect("stdin is piped").write_all(stdin);
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "stdin: {e}");
    }
    child.wait_with_output().expect("candor-export finishes")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const TOKEN: &str = "ghp_FAKEfake0123456789abcdefABCDEFfake01";

#[test]
fn plain_mode_redacts_all_of_stdin() {
    let input = format!(
        "export GITHUB_TOKEN={TOKEN}\n# by jane.fake@corp-mail.io\nuse {TOKEN} again\nkeep 3f786850e387550fdab836ed7e6dc881de23001b\n"
    );
    let o = run(&["redact", "--no-os-identity"], input.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "export GITHUB_TOKEN=<SECRET:github-pat#1>\n# by <EMAIL#1>\nuse <SECRET:github-pat#1> again\nkeep 3f786850e387550fdab836ed7e6dc881de23001b\n"
    );
}

#[test]
fn plain_mode_replaces_names_given_as_flags_and_the_os_identity() {
    let o = run(
        &[
            "redact",
            "--name",
            "Jane Fakename",
            "--user",
            "jqfake",
            "--host",
            "jq-box",
        ],
        b"jqfake@jq-box: reviewed by Jane Fakename\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "<USER#1>@<HOST#1>: reviewed by <NAME#1>\n");

    // The OS identity is on by default: the home directory disappears.
    let Some(home) = std::env::var_os("HOME") else {
        return;
    };
    let home = home.to_string_lossy().into_owned();
    if home.len() > 1 {
        let o = run(&["redact"], format!("open {home}/notes.txt\n").as_bytes());
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), "open <HOME#1>/notes.txt\n");
    }
}

#[test]
fn jsonl_mode_redacts_text_and_adds_findings_line_by_line() {
    let input = format!(
        "{{\"id\":1,\"text\":\"token {TOKEN}\"}}\n{{\"id\":2,\"text\":\"nothing here\",\"meta\":{{\"k\":[1,2]}}}}\n{{\"text\":\"mail jane.fake@corp-mail.io, é {TOKEN}\"}}\n"
    );
    let o = run(&["redact", "--jsonl", "--no-os-identity"], input.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("each output line is JSON"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["id"], 1);
    assert_eq!(lines[0]["text"], "token <SECRET:github-pat#1>");
    assert_eq!(
        lines[0]["findings"],
        serde_json::json!([{"rule": "github-pat", "category": "secret", "start": 6, "end": 46}])
    );
    assert_eq!(lines[1]["text"], "nothing here");
    assert_eq!(lines[1]["findings"], serde_json::json!([]));
    assert_eq!(lines[1]["meta"], serde_json::json!({"k": [1, 2]}));
    // Offsets are bytes of the input text (`é` is two), and the token keeps
    // its placeholder across lines.
    assert_eq!(lines[2]["text"], "mail <EMAIL#1>, é <SECRET:github-pat#1>");
    let f = &lines[2]["findings"];
    assert_eq!(f[0]["rule"], "email");
    assert_eq!(f[0]["category"], "pii");
    assert_eq!(
        (f[0]["start"].as_u64(), f[0]["end"].as_u64()),
        (Some(5), Some(27))
    );
    assert_eq!(
        (f[1]["start"].as_u64(), f[1]["end"].as_u64()),
        (Some(32), Some(72))
    );
    assert!(!out.contains("FAKEfake") && !out.contains("corp-mail"));
}

#[test]
fn jsonl_errors_name_the_line_exit_non_zero_and_write_nothing() {
    let good = format!("{{\"text\":\"{TOKEN}\"}}\n");
    let cases: &[(&str, String, &str)] = &[
        (
            "bad JSON",
            format!("{good}{good}{{\"text\": oops}}\n{good}"),
            "line 3",
        ),
        (
            "missing text",
            format!("{good}{{\"body\":\"x\"}}\n"),
            "line 2: no \"text\" field",
        ),
        (
            "text not a string",
            format!("{{\"text\":42}}\n{good}"),
            "line 1: \"text\" is not a string",
        ),
        (
            "not an object",
            format!("{good}[1,2]\n"),
            "line 2: not a JSON object",
        ),
        ("blank line", format!("{good}\n{good}"), "line 2"),
    ];
    for (what, input, message) in cases {
        let o = run(&["redact", "--jsonl", "--no-os-identity"], input.as_bytes());
        assert!(!o.status.success(), "{what}: exit status {:?}", o.status);
        assert!(o.stdout.is_empty(), "{what}: wrote {:?}", stdout(&o));
        assert!(
            stderr(&o).contains(message),
            "{what}: stderr {:?}",
            stderr(&o)
        );
    }
    // Invalid UTF-8 inside a line.
    let mut bad = good.clone().into_bytes();
    bad.extend_from_slice(b"{\"text\":\"\xff\"}\n");
    let o = run(&["redact", "--jsonl", "--no-os-identity"], &bad);
    assert!(!o.status.success() && o.stdout.is_empty());
    assert!(stderr(&o).contains("line 2"), "{}", stderr(&o));
}

#[test]
fn plain_mode_refuses_invalid_utf8_and_writes_nothing() {
    let o = run(&["redact", "--no-os-identity"], b"token ghp_x \xc3\x28 end");
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).contains("not valid UTF-8"), "{}", stderr(&o));
}

#[test]
fn empty_input_gives_empty_output() {
    for args in [
        &["redact", "--no-os-identity"][..],
        &["redact", "--jsonl", "--no-os-identity"][..],
    ] {
        let o = run(args, b"");
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn identity_from_the_config_is_replaced_too() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[redact]\nnames = [\"Grace Hopper\"]\nusers = [\"ghopper\"]\nhosts = [\"build-box-7\"]\n",
    )
    .unwrap();
    let out = run(
        &[
            "--config",
            config.to_str().unwrap(),
            "redact",
            "--no-os-identity",
        ],
        b"Grace Hopper (ghopper) deployed from build-box-7 at noon\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for gone in ["Grace", "Hopper", "ghopper", "build-box-7"] {
        assert!(!text.contains(gone), "{gone} survived: {text}");
    }
    assert!(
        text.contains("deployed from") && text.contains("at noon"),
        "{text}"
    );
    // A config key that does not exist is an error naming it.
    std::fs::write(&config, "[redact]\nnicknames = [\"Amazing Grace\"]\n").unwrap();
    let out = run(&["--config", config.to_str().unwrap(), "redact"], b"x");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nicknames"), "{}", stderr(&out));
}
