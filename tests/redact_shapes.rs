//! Secret and identity shapes of issue 13 through the redaction engine's
//! public entry points: wallet seed phrases (typed, in a command, in a file,
//! in a diff), credential files keyed on their syntax (`.pgpass`, `.netrc`,
//! `.git-credentials`, Docker `config.json`, `.npmrc`, `.pypirc`), public
//! IPs inside URLs, known token prefixes at any length, and the engineer's
//! git identity read from real `git config` files.
//!
//! Every secret here is fake. The seed phrases are BIP-39 test vectors
//! (trezor/python-mnemonic's `vectors.json`), public and worthless.

use std::path::Path;
use std::process::Command;

use candor::redact::{Category, Identity, KeyStroke, Placeholders, Redactor};

fn redactor() -> &'static Redactor {
    static R: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
    R.get_or_init(|| Redactor::new(&Identity::none()).expect("rule table compiles"))
}

fn redact(text: &str) -> String {
    redactor().redact(text, &mut Placeholders::new()).text
}

/// A 24-word BIP-39 mnemonic (a test vector of the reference suite).
const SEED24: &str = "hamster diagram private dutch cause delay private meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict delay length";

/// A 25-word Monero seed in Monero's English list (the Monero docs'
/// example wallet).
const MONERO25: &str = "sequence atlas unveil summon pebbles tuesday beer rudely snake rockets different fuselage woven tiger inexact tusks maximum aided hefty fossil noises hornet tiger vats";

/// Asserts that the distinctive words of `seed` are gone from `out`
/// (its commoner words may remain elsewhere as ordinary words).
fn assert_no_seed_left(seed: &str, out: &str) {
    let words: Vec<&str> = seed.split(' ').collect();
    let unique: Vec<&str> = [
        "hamster", "diagram", "toddler", "dilemma", "unveil", "fuselage", "inexact", "hornet",
    ]
    .into_iter()
    .filter(|w| words.contains(w))
    .collect();
    assert!(!unique.is_empty());
    for w in unique {
        assert!(!out.contains(w), "{w:?} left in {out:?}");
    }
}

#[test]
fn a_24_word_mnemonic_does_not_leak_from_typed_text() {
    let ks = KeyStroke::type_str(&format!("{SEED24}\n"));
    let out = redactor()
        .redact_keys(&ks, None, &mut Placeholders::new())
        .unwrap();
    assert_no_seed_left(SEED24, &out.redacted);
    let left: String = ks
        .iter()
        .zip(&out.masked)
        .filter(|(_, m)| !**m)
        .filter_map(|(k, _)| k.text.clone())
        .collect();
    assert_no_seed_left(SEED24, &left);
}

#[test]
fn a_24_word_mnemonic_does_not_leak_from_a_command_a_file_or_a_diff() {
    let command = format!("electrum restore \"{SEED24}\" --offline");
    let out = redact(&command);
    assert_no_seed_left(SEED24, &out);
    assert!(
        out.starts_with("electrum restore \"<SECRET:seed-phrase#1>\""),
        "{out}"
    );

    let numbered: String = SEED24
        .split(' ')
        .enumerate()
        .map(|(i, w)| format!("{:>2}. {w}\n", i + 1))
        .collect();
    let file = format!("# wallet backup, keep offline\n{numbered}\nbirthday: 2021-03-04\n");
    let out = redact(&file);
    assert_no_seed_left(SEED24, &out);
    assert!(
        out.contains("wallet backup") && out.contains("birthday"),
        "{out}"
    );

    let json = format!("{{\"mnemonic\": [\"{}\"]}}", SEED24.replace(' ', "\", \""));
    assert_no_seed_left(SEED24, &redact(&json));

    let diff = format!(
        "--- a/notes.md\n+++ b/notes.md\n@@ -1,2 +1,26 @@\n # Notes\n+{}\n",
        SEED24.replace(' ', "\n+")
    );
    let out = redact(&diff);
    assert_no_seed_left(SEED24, &out);
    assert!(out.contains("# Notes"), "{out}");
}

#[test]
fn a_monero_seed_is_found() {
    let text = format!("monero-wallet-cli --restore-deterministic-wallet\n{MONERO25}\n");
    let f = redactor().scan(&text);
    assert!(
        f.iter()
            .any(|f| f.rule == "monero-seed" && f.category == Category::Secret),
        "{f:?}"
    );
    assert_no_seed_left(MONERO25, &redact(&text));
}

#[test]
fn prose_and_code_made_of_list_words_are_kept() {
    for t in [
        // Eleven list words in a row, then a word of neither list.
        "hamster diagram private dutch cause delay private meat slide toddler razor the",
        // Lists in code repeat their words; seeds almost never do.
        "assert!(v.eq_vec(&[true, false, true, false, false, false, false, true, true, false, true, false, false, true]));",
        "'border-left-color', 'border-left-style', 'border-left-width', 'border-right-color', 'border-right-style'",
        "Please review this pull request about the new feature and also check that every test still passes.",
        "fn build_index(items: &[Item], limit: usize) -> Result<Index, Error> { todo!() }",
        "The quick brown fox jumps over the lazy dog; a second sentence follows it.",
    ] {
        assert!(
            !redactor().scan(t).iter().any(|f| f.rule.ends_with("seed") || f.rule == "seed-phrase"),
            "{t}"
        );
    }
}

/// Each credential file's syntax, with the value that must go.
const FILE_SHAPES: &[(&str, &str, &str)] = &[
    (
        "pgpass-line",
        "db.internal.example:5432:orders:app:Tr0ub4dor&3\n",
        "Tr0ub4dor&3",
    ),
    (
        "pgpass-line",
        "*:*:*:replicator:fake\\:colon\\:pw\n",
        "colon",
    ),
    (
        "netrc-password",
        "machine api.example.net login maggie password Fak3NetrcPw\n",
        "Fak3NetrcPw",
    ),
    (
        "netrc-password",
        "machine git.example.org\n    login maggie\n    password s3cr3t-netrc-fake\n",
        "s3cr3t-netrc-fake",
    ),
    (
        "url-credentials",
        "https://maggie:gitcredFAKEpw2024@github.com\n",
        "gitcredFAKEpw2024",
    ),
    (
        "git-credentials-token",
        "https://Zk3FAKEq9fakeR2x7Lp0Wq8Vx2Nn4@gitlab.example.com\n",
        "Zk3FAKEq9fake",
    ),
    (
        "docker-config-auth",
        "{\"auths\":{\"ghcr.io\":{\"auth\":\"bWFnZ2llOkZha2VEb2NrZXJQdzE=\"}}}",
        "bWFnZ2llOkZha2VEb2NrZXJQdzE=",
    ),
    (
        "npmrc-auth",
        "//registry.npmjs.org/:_authToken=Zk3FAKEq9fakeR2x7Lp0Wq8V\n",
        "Zk3FAKEq9fakeR2x7Lp0Wq8V",
    ),
    (
        "npmrc-auth",
        "_auth=bWFnZ2llOmZha2VwYXNz\nalways-auth=true\n",
        "bWFnZ2llOmZha2VwYXNz",
    ),
    (
        "npmrc-auth",
        "//npm.example.com/:_password=RmFrZU5wbVB3\n",
        "RmFrZU5wbVB3",
    ),
    (
        "pypirc-password",
        "[distutils]\nindex-servers =\n    pypi\n\n[pypi]\nusername = maggie\npassword = hunter2\n",
        "hunter2",
    ),
];

#[test]
fn credential_files_are_redacted_by_their_syntax() {
    for (rule, text, secret) in FILE_SHAPES {
        let found = redactor().scan(text);
        assert!(
            found.iter().any(|f| f.rule == *rule),
            "{rule}: {text:?} gave {found:?}"
        );
        let out = redact(text);
        assert!(!out.contains(secret), "{rule}: {secret} left in {out:?}");
    }
    // What must survive: the file's structure and references.
    let out = redact("//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n");
    assert_eq!(out, "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n");
    let out = redact("machine example.org login maggie\n");
    assert_eq!(out, "machine example.org login maggie\n");
}

#[test]
fn public_ips_inside_urls_are_redacted_private_ones_kept() {
    let out = redact("curl http://104.233.145.166:8080/health");
    assert_eq!(out, "curl http://<IP#1>:8080/health");
    let out = redact("open https://[2a00:1450:4007:80e::200e]:443/");
    assert!(!out.contains("2a00:1450"), "{out}");
    for keep in [
        "http://127.0.0.1:8080/",
        "http://10.0.0.5/x",
        "https://192.168.1.1:8443/admin",
        "http://[::1]:3000/",
        "https://203.0.113.7/doc",
    ] {
        assert_eq!(redact(keep), keep);
    }
}

#[test]
fn known_prefixes_are_secrets_at_any_length() {
    for (t, v) in [
        // A fine-grained PAT three characters longer than the format's 82.
        ("GH_TOKEN=github_pat_11FAKEFAKE0aBcDeFgHiJkL_MnOpQrStUvWxYz0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789aBcDeFgHi", "github_pat_11FAKE"),
        ("ghp_FAKEfake0123456789abcdefABCDEFfake01XYZ789", "ghp_FAKE"),
        ("xoxb-FAKEfake0123456789abcdefABCDEFgh", "xoxb-FAKE"),
        ("OPENAI_API_KEY=sk-FAKEfake0123456789abcdefABCDEFghij", "sk-FAKE"),
    ] {
        let out = redact(t);
        assert!(!out.contains(v), "{t} -> {out}");
    }
    for keep in [
        "pip install sk-learn scikit-learn",
        "import sk-learn-contrib-extensions",
        "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ] {
        assert_eq!(redact(keep), keep);
    }
}

fn git(home: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("GIT_CONFIG_GLOBAL")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn git_identity_of_the_global_config_and_a_workspace_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = tmp.path().join("ws");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&repo).unwrap();
    git(
        &home,
        &["config", "--global", "user.name", "Maggie Whitfield"],
    );
    git(
        &home,
        &[
            "config",
            "--global",
            "user.email",
            "maggie.w@acmecorp-fake.io",
        ],
    );
    git(&home, &["init", "-q", repo.to_str().unwrap()]);
    git(
        &home,
        &[
            "-C",
            repo.to_str().unwrap(),
            "config",
            "user.name",
            "Margaret Q. Whitfield",
        ],
    );
    git(
        &home,
        &[
            "-C",
            repo.to_str().unwrap(),
            "config",
            "user.email",
            "mqw@example.org",
        ],
    );

    let mut id = Identity::none();
    id.add_git_global(Some(&home), None, None);
    id.add_git_repo(&repo);
    let r = Redactor::new(&id).unwrap();
    let text = "Signed-off-by: Maggie Whitfield <maggie.w@acmecorp-fake.io>\nCo-authored-by: Margaret Q. Whitfield <mqw@example.org>\n";
    let out = r.redact(text, &mut Placeholders::new()).text;
    for gone in ["Maggie", "Whitfield", "maggie.w@", "mqw@example.org"] {
        assert!(!out.contains(gone), "{gone} left in {out}");
    }
    assert!(out.starts_with("Signed-off-by: <NAME#1>"), "{out}");
}

#[test]
fn candor_export_redact_reads_the_global_git_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    git(
        home,
        &["config", "--global", "user.name", "Maggie Whitfield"],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_candor-export"))
        .arg("redact")
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("GIT_CONFIG_GLOBAL")
        .env_remove("CANDOR_DATA_DIR")
        .env_remove("CANDOR_CONFIG")
        .env("CANDOR_CONFIG_DIR", "/nonexistent-candor-config")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Signed-off-by: Maggie Whitfield\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("Whitfield"), "{text}");
}
