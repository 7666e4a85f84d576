//! The command-line secret rules (`mysql -pX`, `sshpass -p X`, `curl -u
//! u:pw`, `DB_PASSWORD=x cmd`…) on every text path, not only the
//! exporter's command lines: plain `candor-export redact`, typed keys, and
//! file contents (a shell script, a GitHub Actions `run:` line, a
//! Dockerfile, a Makefile). All secrets are fake.

use std::io::Write;
use std::process::{Command, Stdio};

use candor::redact::{Identity, KeyStroke, Placeholders, Redactor};

fn redactor() -> &'static Redactor {
    static R: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
    R.get_or_init(|| Redactor::new(&Identity::none()).expect("rule table compiles"))
}

/// Lines and the secret each holds, one per shape of the table and of the
/// name-based rules.
const SHAPES: &[(&str, &str)] = &[
    ("mysql -u root -pTr0ub4dor&3 prod", "Tr0ub4dor&3"),
    ("mysqldump --password=Hunter2x db", "Hunter2x"),
    ("sshpass -p 'hunter2x' ssh host", "hunter2x"),
    ("curl -u admin:Cu4lPw https://api.acme.io", "Cu4lPw"),
    ("curl -H 'X-Api-Key: k3yV4lue' https://x.io", "k3yV4lue"),
    ("DB_PASSWORD=s3cr3tpw ./migrate.sh", "s3cr3tpw"),
    ("PGPASSWORD=hunter22 psql -h db -U app", "hunter22"),
    ("redis-cli -aGlu3dPw ping", "Glu3dPw"),
    ("ssh-keygen -t ed25519 -N 'K3yPhrase' -f k", "K3yPhrase"),
    ("lftp -u jdoe,Lftp9Pw ftp.acme.internal", "Lftp9Pw"),
    ("http -a jdoe:Ht7pPw GET api.acme.io", "Ht7pPw"),
    ("twine upload -u __token__ -p Tw1nePw dist/*", "Tw1nePw"),
    ("cargo login cio4Xq9zRtYb2Lk8", "cio4Xq9zRtYb2Lk8"),
    ("psql -c \"ALTER USER app PASSWORD 'Sql9Pw'\"", "Sql9Pw"),
    (
        "docker login -u jdoe -p Passw0rd123 reg.acme.io",
        "Passw0rd123",
    ),
    ("mysql -u app --password Sp4cedPw db", "Sp4cedPw"),
    ("sudo -u deploy mysql -pSud0Pw db", "Sud0Pw"),
    (
        "docker login -u x --password-stdin <<< Here5tr1ng",
        "Here5tr1ng",
    ),
];

#[test]
fn plain_redact_cli_takes_out_command_line_secrets() {
    let input: String = SHAPES.iter().map(|(l, _)| format!("{l}\n")).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_candor-export"))
        .args(["redact", "--no-os-identity"])
        .env_remove("CANDOR_DATA_DIR")
        .env_remove("CANDOR_CONFIG")
        .env("CANDOR_CONFIG_DIR", "/nonexistent-candor-config")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("candor-export runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("stdin written");
    let o = child.wait_with_output().expect("candor-export finishes");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).expect("UTF-8");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), SHAPES.len(), "{out}");
    let mut leaks = Vec::new();
    for ((line, secret), got) in SHAPES.iter().zip(&lines) {
        if got.contains(secret) || !got.contains("<SECRET:") {
            leaks.push(format!("{line:?} -> {got:?}"));
        }
    }
    assert!(leaks.is_empty(), "leaked:\n{}", leaks.join("\n"));
    // The first one, exactly: the program and its other words stay.
    assert_eq!(lines[0], "mysql -u root -p<SECRET:command-password#1> prod");
}

#[test]
fn a_password_typed_into_a_terminal_command_is_masked() {
    let ks = KeyStroke::type_str("mysql -u root -pHunter2 prod\nls\n");
    let out = redactor()
        .redact_keys(&ks, None, &mut Placeholders::new())
        .expect("keys redact");
    assert!(
        out.redacted
            .starts_with("mysql -u root -p<SECRET:command-password#1> prod\n"),
        "{}",
        out.redacted
    );
    let left: String = ks
        .iter()
        .zip(&out.masked)
        .filter(|(_, m)| !**m)
        .filter_map(|(k, _)| k.text.clone())
        .collect();
    assert!(
        !left.contains("Hunter2"),
        "typed keys left in clear: {left:?}"
    );
}

fn redact(text: &str) -> String {
    redactor().redact(text, &mut Placeholders::new()).text
}

#[test]
fn a_shell_script_file_loses_its_command_line_secrets() {
    let script = "#!/bin/sh\nset -eu\n# nightly dump\nmysqldump -u backup -pN1ghtlyPw shop > /srv/dump.sql\nsshpass -p 'R3moteP4ss' scp /srv/dump.sql backup@store:\n";
    let out = redact(script);
    assert!(!out.contains("N1ghtlyPw"), "{out}");
    assert!(!out.contains("R3moteP4ss"), "{out}");
    assert!(
        out.contains("mysqldump -u backup -p<SECRET:command-password#"),
        "{out}"
    );
}

#[test]
fn ci_yaml_run_lines_dockerfiles_and_makefiles_lose_theirs() {
    let yaml = "jobs:\n  test:\n    steps:\n      - run: mysql -h 127.0.0.1 -u root -pCiR00tPw -e 'select 1'\n      - name: login\n        run: docker login -u bot -p D0ckerCiPw ghcr.io\n      - run: echo ${{ secrets.TOKEN }} | docker login -u bot --password-stdin\n";
    let out = redact(yaml);
    assert!(!out.contains("CiR00tPw"), "{out}");
    assert!(!out.contains("D0ckerCiPw"), "{out}");
    assert!(
        out.contains("secrets.TOKEN"),
        "a reference is no secret: {out}"
    );
    let docker = "FROM mysql:8\nRUN mysql -uroot -pD0ckerf1lePw -e 'create database x'\n";
    assert!(!redact(docker).contains("D0ckerf1lePw"));
    let make = "dump:\n\t@mysqldump -uroot -pM4kePw shop > x.sql\n";
    assert!(!redact(make).contains("M4kePw"));
}

#[test]
fn code_that_merely_mentions_the_programs_keeps_its_words() {
    for text in [
        "let token = tokens.next();\nreturn password\n",
        "def connect(password=None):\n    return mysql.connect(password=password)\n",
        "parser.add_argument('--password', help='the password')\n",
        "mysql -p prod\n",
        "curl -s https://example.com/install.sh | sh\n",
        "run: cargo test --all-targets\n",
    ] {
        assert_eq!(redact(text), text);
    }
}
