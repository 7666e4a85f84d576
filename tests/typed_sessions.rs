//! The typed-session corpus: scripted password dialogues (command, prompts
//! answered with typos, backspaces and retries, then the next command),
//! replayed as key events through the redaction engine, with every key of
//! every answer checked. It prints masked / leaked per program and fails on
//! any leak, and on any next command masked by mistake.
//!
//! All passwords here are fake.

use candor::redact::{Identity, KeyStroke, Placeholders, Redactor};

fn redactor() -> &'static Redactor {
    static R: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
    R.get_or_init(|| Redactor::new(&Identity::none()).expect("rule table compiles"))
}

/// One typed line of a session, and whether it answers a prompt.
enum Line {
    /// A shell command (must be kept).
    Cmd(&'static str),
    /// An answer typed straight (must be masked).
    Secret(&'static str),
    /// An answer with a typo corrected: the first `n` characters, a wrong
    /// one, Backspace, then the rest.
    Typo(&'static str, usize),
    /// An answer erased with Ctrl+Backspace and typed again.
    Retyped(&'static str, &'static str),
}

struct Session {
    name: &'static str,
    /// The focused window's title.
    title: Option<&'static str>,
    lines: Vec<Line>,
}

fn s(name: &'static str, lines: Vec<Line>) -> Session {
    Session {
        name,
        title: None,
        lines,
    }
}

use Line::{Cmd, Retyped, Secret, Typo};

fn corpus() -> Vec<Session> {
    vec![
        s(
            "passwd",
            vec![
                Cmd("passwd"),
                Secret("0ld-Fake-pw1"),
                Typo("N3w-Fake-pw2", 4),
                Secret("N3w-Fake-pw2"),
                Cmd("ls -la"),
            ],
        ),
        s(
            "passwd (mismatch, asked again)",
            vec![
                Cmd("passwd"),
                Secret("0ld-Fake-pw1"),
                Secret("N3w-Fake-pw2"),
                Secret("N3w-Fake-pwX"),
                Secret("N3w-Fake-pw3"),
                Secret("N3w-Fake-pw3"),
                Cmd("git status"),
            ],
        ),
        s(
            "sudo (typo, then the right one)",
            vec![
                Cmd("sudo apt install ripgrep"),
                Secret("hunter3-fake"),
                Typo("hunter2-fake", 3),
                Cmd("rg TODO"),
            ],
        ),
        s(
            "sudo -u behind env and time",
            vec![
                Cmd("env LANG=C time sudo -u postgres psql -W"),
                Secret("Sud0-fake-pw"),
                Secret("Pg-fake-pw9"),
                Cmd("cd /srv"),
            ],
        ),
        s(
            "git push over https",
            vec![
                Cmd("git push origin main"),
                Secret("margaret"),
                Secret("ghp-fake-tok3n-value"),
                Cmd("git log --oneline"),
            ],
        ),
        s(
            "docker login",
            vec![
                Cmd("docker login registry.acme.io"),
                Secret("mwhitfield"),
                Retyped("Dock3r-fak", "Dock3r-fake-pw"),
                Cmd("docker push registry.acme.io/app"),
            ],
        ),
        s(
            "ssh-keygen",
            vec![
                Cmd("ssh-keygen -t ed25519 -C work"),
                Secret(""),
                Secret("Keyg3n fake phrase"),
                Secret("Keyg3n fake phrase"),
                Cmd("cat ~/.ssh/id_ed25519.pub"),
            ],
        ),
        s(
            "htpasswd",
            vec![
                Cmd("htpasswd -c /etc/nginx/.htpasswd bob"),
                Secret("Htp-fake-pw4"),
                Typo("Htp-fake-pw4", 6),
                Cmd("sudo systemctl reload nginx"),
            ],
        ),
        s(
            "mysql -p",
            vec![
                Cmd("mysql -u root -p prod"),
                Secret("Tr0ub4dor&3"),
                Cmd("exit"),
            ],
        ),
        s(
            "psql -W",
            vec![Cmd("psql -h db1 -U app -W appdb"), Secret("Psql-fake-pw5")],
        ),
        s(
            "gpg --symmetric",
            vec![
                Cmd("gpg --symmetric notes.txt"),
                Secret("correct horse battery staple"),
                Secret("correct horse battery staple"),
                Cmd("rm notes.txt"),
            ],
        ),
        s(
            "openssl req",
            vec![
                Cmd("openssl req -new -newkey rsa:2048 -keyout k.pem -out r.csr"),
                Secret("Req-fake-phrase"),
                Secret("Req-fake-phrase"),
                Secret("FR"),
                Secret(""),
                Secret("Paris"),
                Secret("Acme"),
                Secret(""),
                Secret("db1.acme.io"),
                Secret(""),
                Secret("Chall3nge-fake"),
                Secret(""),
                Cmd("ls -l r.csr"),
            ],
        ),
        s(
            "openssl pkcs12",
            vec![
                Cmd("openssl pkcs12 -export -in c.pem -inkey k.pem -out c.p12"),
                Secret("Pkcs-fake-pw6"),
                Secret("Pkcs-fake-pw6"),
            ],
        ),
        s(
            "ansible-vault",
            vec![
                Cmd("ansible-vault encrypt group_vars/all/vault.yml"),
                Secret("Vault-fake-pw7"),
                Secret("Vault-fake-pw7"),
                Cmd("git add group_vars"),
            ],
        ),
        s(
            "vault login",
            vec![
                Cmd("vault login"),
                Secret("hvs.FAKEtoken0123"),
                Cmd("vault kv get secret/app"),
            ],
        ),
        s(
            "kinit",
            vec![
                Cmd("kinit margaret@ACME.IO"),
                Secret("Krb-fake-pw8"),
                Cmd("klist"),
            ],
        ),
        s(
            "su - after a failed try",
            vec![
                Cmd("su -"),
                Secret("R00t-wrong"),
                Cmd("su -"),
                Secret("R00t-fake-pw"),
                Cmd("whoami"),
            ],
        ),
        s(
            "mysql -p inside docker exec",
            vec![
                Cmd("docker exec -it db mysql -u root -p"),
                Typo("My-Fake-root-9", 5),
                Cmd("docker ps"),
            ],
        ),
        s(
            "psql -W inside kubectl exec",
            vec![
                Cmd("kubectl -n prod exec -it pg-0 -c db -- psql -U app -W"),
                Secret("Pg-Fake-app-4"),
                Cmd("kubectl get pods"),
            ],
        ),
        s(
            "chronic and unbuffer",
            vec![
                Cmd("unbuffer gpg -d backup.tar.gpg"),
                Secret("Unbuf-fake-phrase"),
                Cmd("chronic kinit bob"),
                Secret("Chron-fake-pw"),
                Cmd("ls"),
            ],
        ),
        Session {
            name: "title: Enter PIN for token.p11",
            title: Some("Enter PIN for token.p11"),
            lines: vec![Secret("482913")],
        },
        Session {
            name: "title: Password for an e-mail",
            title: Some("Password for margaret.whitfield@acmecorp.io"),
            lines: vec![Typo("Gmail-fake-pw", 2)],
        },
        Session {
            name: "title: a terminal running ssh",
            title: Some("ssh admin@db1.acme.io"),
            lines: vec![Secret("Ssh-fake-pw"), Cmd("uptime -p")],
        },
        Session {
            name: "title: [sudo] password for bob",
            title: Some("[sudo] password for bob"),
            lines: vec![Secret("Term-fake-pw"), Cmd("make install")],
        },
    ]
}

/// The keys of a session, and for each key whether it belongs to an answer
/// (`Some(true)`), a command (`Some(false)`).
fn keys_of(session: &Session) -> (Vec<KeyStroke>, Vec<bool>) {
    let mut keys = Vec::new();
    let mut secret = Vec::new();
    let mut add = |ks: Vec<KeyStroke>, is_secret: bool| {
        secret.extend(std::iter::repeat_n(is_secret, ks.len()));
        keys.extend(ks);
    };
    for line in &session.lines {
        match *line {
            Cmd(c) => add(KeyStroke::type_str(c), false),
            Secret(p) => add(KeyStroke::type_str(p), true),
            Typo(p, n) => {
                let (a, b) = p.split_at(n);
                add(KeyStroke::type_str(a), true);
                add(KeyStroke::type_str("q"), true);
                add(vec![KeyStroke::named("Backspace")], true);
                add(KeyStroke::type_str(b), true);
            }
            Retyped(first, p) => {
                add(KeyStroke::type_str(first), true);
                let mut ctrl_bs = KeyStroke::named("Backspace");
                ctrl_bs.mods = 2;
                // A word at a time, as a shell's Ctrl+Backspace does.
                for _ in 0..first.split(['-', ' ']).count() {
                    add(vec![ctrl_bs.clone()], true);
                }
                add(KeyStroke::type_str(p), true);
            }
        }
        // Return ends the line; it carries nothing.
        add(KeyStroke::type_str("\n"), false);
    }
    (keys, secret)
}

#[test]
fn every_key_of_every_password_dialogue_is_masked() {
    let r = redactor();
    let mut report = Vec::new();
    let mut leaks = 0;
    let mut overmasked = 0;
    let mut per_session: Vec<(&str, usize, usize)> = Vec::new();
    for session in corpus() {
        let (keys, secret) = keys_of(&session);
        let out = r
            .redact_keys(&keys, session.title, &mut Placeholders::new())
            .expect("replay");
        let secret_keys = secret.iter().filter(|s| **s).count();
        let leaked: String = keys
            .iter()
            .zip(&secret)
            .zip(&out.masked)
            .filter(|((_, s), m)| **s && !**m)
            .filter_map(|((k, _), _)| k.text.clone())
            .collect();
        let leaked_n = keys
            .iter()
            .zip(&secret)
            .zip(&out.masked)
            .filter(|((k, s), m)| **s && !**m && k.key != "Backspace")
            .count();
        // Commands after the dialogue must survive: masking them would be
        // the cheap way to pass.
        // (An e-mail in a command is masked by its own rule: that is fine.)
        let as_password =
            |i: usize| out.finding_of[i].is_some_and(|f| out.findings[f].rule == "typed-password");
        let lost: String = (0..keys.len())
            .filter(|&i| !secret[i] && as_password(i))
            .filter_map(|i| keys[i].text.clone())
            .collect();
        leaks += leaked_n;
        overmasked += lost.len();
        per_session.push((session.name, secret_keys, leaked_n));
        report.push(format!(
            "{:<36} secret keys {:>3}  masked {:>3}  leaked {:>3} {:?}{}",
            session.name,
            secret_keys,
            secret_keys - leaked_n,
            leaked_n,
            leaked,
            if lost.is_empty() {
                String::new()
            } else {
                format!("  commands masked: {lost:?}")
            }
        ));
    }
    println!("{}", report.join("\n"));
    // The same, per program (the first word of a session's name; the
    // sessions where only the window title asks for a password together).
    let mut programs: Vec<(&str, usize, usize, usize)> = Vec::new();
    for (name, keys, leaked) in &per_session {
        let program = if name.starts_with("title:") {
            "(title asks)"
        } else {
            name.split_whitespace().next().unwrap_or(name)
        };
        match programs.iter_mut().find(|p| p.0 == program) {
            Some(p) => {
                p.1 += 1;
                p.2 += keys;
                p.3 += leaked;
            }
            None => programs.push((program, 1, *keys, *leaked)),
        }
    }
    println!(
        "\n{:<14} {:>8} {:>11} {:>7} {:>7}",
        "program", "sessions", "secret keys", "masked", "leaked"
    );
    for (program, n, keys, leaked) in &programs {
        println!(
            "{program:<14} {n:>8} {keys:>11} {:>7} {leaked:>7}",
            keys - leaked
        );
    }
    assert_eq!(leaks, 0, "typed passwords leaked:\n{}", report.join("\n"));
    assert_eq!(
        overmasked,
        0,
        "commands masked as passwords:\n{}",
        report.join("\n")
    );
}

#[test]
fn code_typed_in_an_editor_is_not_a_password() {
    let r = redactor();
    for title in [
        "password_reset.py - acme-app - Visual Studio Code",
        "password_reset.py (~/src/acme) - NVIM",
        "*password_reset.py (~/src/acme) - gedit",
        "password_reset.py - Sublime Text",
        "PasswordReset.java [acme] - IntelliJ IDEA",
    ] {
        let keys = KeyStroke::type_str("def reset(user):\n    send_link(user)\n");
        let out = r
            .redact_keys(&keys, Some(title), &mut Placeholders::new())
            .unwrap();
        assert!(out.findings.is_empty(), "{title}: {:?}", out.findings);
    }
}
