//! The redaction engine through its public API: every detector family, the
//! keep-list, placeholder consistency, identity, and typed keystrokes.
//!
//! All secrets here are fake strings in the providers' formats.

use candor::redact::{Category, Identity, KeyStroke, Placeholders, RedactError, Redactor};

/// One redactor for the whole file: building one compiles every rule.
fn redactor() -> &'static Redactor {
    static R: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
    R.get_or_init(|| Redactor::new(&Identity::none()).expect("rule table compiles"))
}

fn redact(text: &str) -> String {
    redactor().redact(text, &mut Placeholders::new()).text
}

/// The rule ids found in `text`.
fn rules(text: &str) -> Vec<&'static str> {
    redactor().scan(text).iter().map(|f| f.rule).collect()
}

/// True positives for every family the issue names, with the rule expected.
const SECRETS: &[(&str, &str)] = &[
    ("aws-access-key-id", "export AWS_ACCESS_KEY_ID=AKIAQ3FAKE7KEYZ4WXYZ"),
    ("aws-secret-access-key", "aws_secret_access_key = \"Zq8FAKEsecretKEYvalue0123456789abcdEFG/+\""),
    ("github-pat", "git remote set-url origin https://ghp_FAKEfake0123456789abcdefABCDEFfake01@github.com/o/r"),
    ("github-oauth", "gho_FAKEfake0123456789abcdefABCDEFfake02"),
    ("github-fine-grained-pat", "github_pat_11FAKEFAKE0fakefakefake_FAKEfake0123456789abcdefABCDEFfakeFAKEfake0123456789abcdef"),
    ("gitlab-pat", "glpat-FAKEfake0123abcdEFGH"),
    ("slack-token", "xoxb-123456789012-1234567890123-Fk3q9ZtR0wXy7LmN2bVc8HdJ"),
    ("slack-webhook-url", "https://hooks.slack.com/services/TFAKE0001/BFAKE0002/FAKEfakeFAKEfake01234567"),
    ("stripe-key", "Stripe.api_key = 'rk_live_FAKEfake0123456789abcdEFGH'"),
    ("gcp-api-key", "key=AIzaSyFAKEfake0123456789abcdefFAKEfake1"),
    ("openai-api-key", "sk-proj-FAKEfake0123456789abcdEFGHijklMNOPqrst0123456789"),
    ("huggingface-token", "HF_TOKEN=hf_FAKEfakeFAKEfakeFAKEfakeFAKEfakeQZ"),
    ("npm-token", "//registry.npmjs.org/:_authToken=npm_FAKEfake0123456789abcdefABCDEFfake05"),
    ("pypi-token", "pypi-AgEIcHlwaS5vcmcFAKEfake0123456789abcdEFGHijklMNOPqrst0123456789FAKE"),
    ("sendgrid-api-key", "SG.FAKEfake0123456789abcd.FAKEfake0123456789abcdEFGHijklMNOPqrst01234"),
    ("twilio-key", "SK0fa1ce0fa1ce0fa1ce0fa1ce12345678"),
    ("telegram-bot-token", "bot 123456789:AAFAKEfake0123456789abcdEFGHijklMNO"),
    ("azure-storage-key", "DefaultEndpointsProtocol=https;AccountName=fake;AccountKey=FAKEfake0123456789abcdEFGHijklMNOPqrst0123456789FAKEfake012345678==;"),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJmYWtlLXVzZXIiLCJmYWtlIjp0cnVlfQ.FAKEfakeSIGNATUREfake0123"),
    ("private-key", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIFAKEfakeFAKEfake0123456789abcdEFGHijklMNOPoAoGCCqGSM49\n-----END EC PRIVATE KEY-----"),
    ("private-key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAFAKEFAKEFAKE\n-----END OPENSSH PRIVATE KEY-----"),
    ("url-credentials", "https://deploy:FakeS3cretPw@git.example.org/repo.git"),
    ("database-connection-url", "mongodb+srv://app:Fak3Passw0rd@cluster0.fake.mongodb.net/db"),
    ("database-connection-string", "Server=tcp:db,1433;Initial Catalog=app;User ID=sa;Password=Fak3Passw0rd!;"),
    ("password-assignment", "DB_PASSWORD=Fak3Passw0rd"),
    ("password-assignment", "\"password\": \"correct-horse-fake\""),
    ("generic-secret", "client_secret: Zk3FAKEq9fakeR2x7Lp0"),
    ("generic-secret", "API_TOKEN => 'Zk3FAKEq9fakeR2x7Lp0'"),
    ("anthropic-api-key", "sk-ant-api03-FAKEfake0123456789abcdEFGHijklMNOPqrstFAKEfake0123456789abcdEFGHijklMNOPqrstFAKEfake012345678AA"),
];

#[test]
fn every_secret_family_is_found_by_its_rule_and_removed() {
    for (rule, text) in SECRETS {
        let found = rules(text);
        assert!(
            found.contains(rule),
            "{rule} not found in {text:?}: {found:?}"
        );
        let out = redact(text);
        assert!(out.contains("<SECRET:"), "{text:?} -> {out:?}");
    }
}

#[test]
fn redacted_text_scans_clean() {
    // `verify` re-scans exports: placeholders must never be findings.
    let r = redactor();
    for (_, text) in SECRETS {
        let once = r.redact(text, &mut Placeholders::new()).text;
        assert_eq!(r.scan(&once), [], "{text:?} -> {once:?}");
    }
    let pii = "mail jane.fake@corp-mail.io, call +44 20 7946 0958, ip 93.184.216.34";
    let once = r.redact(pii, &mut Placeholders::new()).text;
    assert_eq!(r.scan(&once), [], "{once}");
}

#[test]
fn personal_data_families() {
    let cases: &[(&str, &str, &str)] = &[
        ("email", "contact: jane.fake@corp-mail.io", "<EMAIL#1>"),
        ("phone", "call +1 415 555 2671 today", "<PHONE#1>"),
        ("phone", "tel: 030 1234 5678", "<PHONE#1>"),
        ("phone", "(415) 555-2671", "<PHONE#1>"),
        ("ipv4", "ssh 93.184.216.34", "<IP#1>"),
        ("ipv6", "AAAA 2606:4700:4700::1111", "<IP#1>"),
        ("payment-card", "card: 5555-5555-5555-4444", "<CARD#1>"),
        ("payment-card", "amex 378282246310005", "<CARD#1>"),
        ("iban", "DE89 3704 0044 0532 0130 00", "<IBAN#1>"),
        ("ssn", "SSN: 078-05-1121", "<SSN#1>"),
    ];
    let r = redactor();
    for (rule, text, placeholder) in cases {
        let out = r.redact(text, &mut Placeholders::new());
        assert!(
            out.findings
                .iter()
                .any(|f| f.rule == *rule && f.category == Category::Pii),
            "{rule} not in {text:?}: {:?}",
            out.findings
        );
        assert!(out.text.contains(placeholder), "{text:?} -> {}", out.text);
    }
    // Failing checksums are not cards or IBANs.
    assert_eq!(rules("card: 5555-5555-5555-4445"), Vec::<&str>::new());
    assert_eq!(rules("DE89 3704 0044 0532 0130 01"), Vec::<&str>::new());
}

#[test]
fn keep_list_survives_untouched() {
    let keep = [
        "commit 3f786850e387550fdab836ed7e6dc881de23001b (HEAD -> main)",
        "id = \"29f63271-dc2f-4734-8221-5b31b5169bac\"",
        "\"integrity\": \"sha512-FAKEfakeFAKEfake0123456789abcdEFGHijklMNOPqrstUVWXyz==\",",
        "checksum = \"0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce1234\"",
        "image: nginx@sha256:0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce1234",
        "api_key = os.environ[\"API_KEY\"]",
        "token: ${{ secrets.GITHUB_TOKEN }}",
        "password = $(pass show db/prod)",
        "DB_PASSWORD=${DB_PASSWORD}",
        "secret = process.env.SECRET",
        "api_key = \"<your-api-key>\"",
        "password: changeme",
        "SECRET_KEY = 'xxxxxxxxxxxxxxxxxxxxxxxx'",
        "let access_token_refresh_interval_seconds = 3600;",
        "const tokenizerVocabularyFileName = \"vocab.json\";",
        "version = \"1.2.3-rc.1\"",
        "let big = 12345678901234567890u128; let pi = 3.14159;",
        "http://127.0.0.1:8080 http://10.0.0.5 http://192.168.1.10",
        "fn parse_access_key(key: &str) -> Result<Key, Error>",
        "self.secret_key = secret_key",
    ];
    let r = redactor();
    for t in keep {
        let out = r.redact(t, &mut Placeholders::new());
        assert_eq!(out.text, t, "changed: {:?}", out.findings);
    }
}

#[test]
fn placeholders_are_consistent_within_a_book_and_hide_the_value() {
    let r = redactor();
    let mut book = Placeholders::new();
    let a = r.redact(
        "to jane.fake@corp-mail.io cc bob.fake@corp-mail.io re jane.fake@corp-mail.io",
        &mut book,
    );
    assert_eq!(a.text, "to <EMAIL#1> cc <EMAIL#2> re <EMAIL#1>");
    // The same book across documents: an export run.
    let b = r.redact("from bob.fake@corp-mail.io", &mut book);
    assert_eq!(b.text, "from <EMAIL#2>");
    // The same token caught twice is one placeholder; a new book starts over.
    let t = "A=ghp_FAKEfake0123456789abcdefABCDEFfake01 B=ghp_FAKEfake0123456789abcdefABCDEFfake01";
    let c = r.redact(t, &mut book);
    assert_eq!(c.text, "A=<SECRET:github-pat#1> B=<SECRET:github-pat#1>");
    assert_eq!(
        r.redact("x bob.fake@corp-mail.io", &mut Placeholders::new())
            .text,
        "x <EMAIL#1>"
    );
    assert!(!format!("{book:?}").contains("corp-mail"));
}

#[test]
fn identity_is_replaced_everywhere() {
    let mut id = Identity::none();
    id.add_user("jqfake")
        .add_full_name("Jane Fakename")
        .add_host("jq-thinkpad.corp.example")
        .add_home("/home/jqfake");
    let r = Redactor::new(&id).unwrap();
    let text = "jqfake@jq-thinkpad:~$ cat /home/jqfake/.bashrc # by Jane Fakename (JQFAKE)\n\
                Signed-off-by: jane.fakename; host jq-thinkpad.corp.example";
    let out = r.redact(text, &mut Placeholders::new());
    for gone in [
        "jqfake",
        "JQFAKE",
        "Jane Fakename",
        "jane.fakename",
        "jq-thinkpad",
        "/home/jqfake",
    ] {
        assert!(!out.text.contains(gone), "{gone} left in {}", out.text);
    }
    assert!(out.text.contains("<HOME#1>/.bashrc"), "{}", out.text);
    assert!(out.findings.iter().all(|f| f.category != Category::Secret));
    // Letters inside another word are not the user.
    let id2 = {
        let mut i = Identity::none();
        i.add_user("ann");
        i
    };
    let r2 = Redactor::new(&id2).unwrap();
    assert_eq!(
        r2.redact("annotation by ann", &mut Placeholders::new())
            .text,
        "annotation by <USER#1>"
    );
}

#[test]
fn bad_input_gives_errors_not_panics() {
    let r = redactor();
    let err = r
        .redact_bytes(b"ok \xff\xfe bad", &mut Placeholders::new())
        .unwrap_err();
    assert!(matches!(err, RedactError::NotUtf8 { offset: 3 }), "{err}");
    // A huge single line with keywords everywhere finishes and finds the token.
    let mut huge = "key=value;token;".repeat(200_000);
    huge.push_str("ghp_FAKEfake0123456789abcdefABCDEFfake01");
    let out = r.scan(&huge);
    assert!(out.iter().any(|f| f.rule == "github-pat"));
}

// ---- typed keystrokes ----

fn keys(parts: &[&[KeyStroke]]) -> Vec<KeyStroke> {
    parts.iter().flat_map(|p| p.iter().cloned()).collect()
}

fn masked_text(ks: &[KeyStroke], masked: &[bool]) -> String {
    ks.iter()
        .zip(masked)
        .filter(|(_, m)| !**m)
        .filter_map(|(k, _)| k.text.clone())
        .collect()
}

#[test]
fn typed_token_with_a_corrected_typo_is_masked_including_the_typo() {
    let r = redactor();
    // Types "export GH=ghp_FAKEfake012345", then "7" by mistake, Backspace,
    // then the rest of the token.
    let ks = keys(&[
        &KeyStroke::type_str("export GH=ghp_FAKEfake012345"),
        &KeyStroke::type_str("7"),
        &[KeyStroke::named("Backspace")],
        &KeyStroke::type_str("6789abcdefABCDEFfake01\n"),
    ]);
    let out = r.redact_keys(&ks, None, &mut Placeholders::new()).unwrap();
    assert_eq!(
        out.text,
        "export GH=ghp_FAKEfake0123456789abcdefABCDEFfake01\n"
    );
    assert_eq!(out.redacted, "export GH=<SECRET:github-pat#1>\n");
    let left = masked_text(&ks, &out.masked);
    assert_eq!(left, "export GH=\n", "the typo '7' must be masked too");
}

#[test]
fn token_pasted_in_the_middle_of_typing_is_masked() {
    let r = redactor();
    let ks = keys(&[
        &KeyStroke::type_str("curl -H 'Authorization: Bearer "),
        &[KeyStroke::paste(
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJmYWtlLXVzZXIiLCJmYWtlIjp0cnVlfQ",
        )],
        &KeyStroke::type_str(".FAKEfakeSIGNATUREfake0123' https://api.fake.test"),
    ]);
    let out = r.redact_keys(&ks, None, &mut Placeholders::new()).unwrap();
    assert!(out.redacted.contains("Bearer <SECRET:"), "{}", out.redacted);
    let paste = ks.iter().position(|k| k.key == "Paste").unwrap();
    assert!(out.masked[paste]);
    let left = masked_text(&ks, &out.masked);
    assert!(
        !left.contains("SIGNATURE") && !left.contains("eyJ"),
        "{left}"
    );
}

#[test]
fn password_typed_after_a_prompt_is_masked() {
    let r = redactor();
    let ks = keys(&[
        &KeyStroke::type_str("sudo apt install ripgrep\n"),
        &KeyStroke::type_str("hunter2-fake\n"),
        &KeyStroke::type_str("rg TODO\n"),
    ]);
    let out = r.redact_keys(&ks, None, &mut Placeholders::new()).unwrap();
    assert_eq!(
        out.redacted,
        "sudo apt install ripgrep\n<SECRET:typed-password#1>\nrg TODO\n"
    );
    assert_eq!(
        masked_text(&ks, &out.masked),
        "sudo apt install ripgrep\n\nrg TODO\n"
    );
    // A prompt known from the focused window: the first line is the password.
    let ks2 = KeyStroke::type_str("Tr0ub4dor-fake\n");
    let out2 = r
        .redact_keys(
            &ks2,
            Some("Unlock keyring: enter password"),
            &mut Placeholders::new(),
        )
        .unwrap();
    assert!(out2.masked[..14].iter().all(|m| *m));
    // With sudo's cached credentials the next line is a command, not a password.
    let ks3 = KeyStroke::type_str("sudo apt update\nsudo apt upgrade\n");
    let out3 = r.redact_keys(&ks3, None, &mut Placeholders::new()).unwrap();
    assert!(out3.findings.is_empty());
}

#[test]
fn arrow_keys_edit_the_middle_of_a_token() {
    let r = redactor();
    // Types the token without its "Q", goes back with the arrows, inserts
    // it, goes to the end with End, and finishes the line.
    let ks = keys(&[
        &KeyStroke::type_str("HF_TOKEN=hf_FAKEfakeFAKEfakeFAKEfakeFAKEfakeZ"),
        &[KeyStroke::named("LeftArrow")],
        &KeyStroke::type_str("Q"),
        &[KeyStroke::named("End")],
        &KeyStroke::type_str("\n"),
        &[KeyStroke::named("UpArrow"), KeyStroke::named("Home")],
        &KeyStroke::type_str("export "),
    ]);
    let out = r.redact_keys(&ks, None, &mut Placeholders::new()).unwrap();
    assert_eq!(
        out.text,
        "export HF_TOKEN=hf_FAKEfakeFAKEfakeFAKEfakeFAKEfakeQZ\n"
    );
    assert_eq!(
        out.redacted,
        "export HF_TOKEN=<SECRET:huggingface-token#1>\n"
    );
    let left = masked_text(&ks, &out.masked);
    assert_eq!(left, "HF_TOKEN=\nexport ");
}

#[test]
fn erased_and_retyped_token_masks_the_first_attempt() {
    let r = redactor();
    let mut ks = KeyStroke::type_str("T=ghp_FAKEfa");
    ks.extend(std::iter::repeat_n(KeyStroke::named("Backspace"), 10));
    ks.extend(KeyStroke::type_str(
        "ghp_FAKEfake0123456789abcdefABCDEFfake01",
    ));
    let out = r.redact_keys(&ks, None, &mut Placeholders::new()).unwrap();
    assert_eq!(out.redacted, "T=<SECRET:github-pat#1>");
    assert_eq!(masked_text(&ks, &out.masked), "T=");
}

#[test]
fn chords_do_not_type_and_ctrl_backspace_deletes_a_word() {
    let r = redactor();
    let mut ks = KeyStroke::type_str("hello world");
    ks.push(KeyStroke {
        key: "KeyC".into(),
        text: Some("ctrl+c".into()),
        mods: 2,
    });
    ks.push(KeyStroke {
        key: "Backspace".into(),
        text: None,
        mods: 2,
    });
    let out = r.redact_keys(&ks, None, &mut Placeholders::new()).unwrap();
    assert_eq!(out.text, "hello ");
}

#[test]
fn key_events_are_replayed_per_focus_segment() {
    use candor::event::{Event, Stamp};
    use candor::registry::Kind;
    let stamp = Stamp {
        wall_ns: 1,
        mono_ns: 0,
    };
    let key = |k: &KeyStroke| {
        let mut e = Event::new(Kind::KeyDown, stamp)
            .with("class", candor::keymap::class_of(&k.key))
            .unwrap()
            .with("mods", 0)
            .unwrap()
            .with("key", k.key.as_str())
            .unwrap();
        if let Some(t) = &k.text {
            e.set("text", t.as_str()).unwrap();
        }
        e
    };
    let focus = |title: &str| {
        Event::new(Kind::WindowFocus, stamp)
            .with("app", "gnome-terminal")
            .unwrap()
            .with("title", title)
            .unwrap()
    };
    let mut events = vec![focus("vim notes.md")];
    events.extend(
        KeyStroke::type_str("hello ghp_FAKEfake0123456789abcdefABCDEFfake01")
            .iter()
            .map(key),
    );
    events.push(focus("Authentication required: enter password"));
    events.extend(KeyStroke::type_str("Tr0ub4dor-fake\n").iter().map(key));
    // A key event with timing only: no key name, nothing to replay.
    events.push(
        Event::new(Kind::KeyDown, stamp)
            .with("class", "letter")
            .unwrap()
            .with("mods", 0)
            .unwrap(),
    );

    let r = redactor();
    let segs = r
        .redact_key_events(&events, &mut Placeholders::new())
        .unwrap();
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[0].keys.redacted, "hello <SECRET:github-pat#1>");
    assert_eq!(segs[0].segment.title.as_deref(), Some("vim notes.md"));
    assert_eq!(segs[0].key_events.len(), 46);
    assert_eq!(segs[0].keys.masked.iter().filter(|m| **m).count(), 40);
    assert_eq!(segs[1].keys.redacted, "<SECRET:typed-password#1>\n");
    assert_eq!(
        segs[1].key_events.len(),
        15,
        "the timing-only key is left out"
    );
    for (i, &ev) in segs[1].key_events.iter().enumerate() {
        let masked = segs[1].keys.masked[i];
        let is_return =
            matches!(events[ev].get("key"), Some(candor::event::Value::Str(k)) if k == "Return");
        assert_eq!(masked, !is_return, "event {ev}");
    }
}

#[test]
fn home_path_is_a_prefix_but_not_of_another_users_home() {
    let mut id = Identity::none();
    id.add_home("/home/jqfake");
    let r = Redactor::new(&id).unwrap();
    assert_eq!(
        r.redact(
            "cd /home/jqfake/src; ls /home/jqfake2",
            &mut Placeholders::new()
        )
        .text,
        "cd <HOME#1>/src; ls /home/jqfake2"
    );
}

#[test]
fn jsonl_library_mode_accepts_crlf_and_a_missing_final_newline() {
    use candor::redact::jsonl::redact_jsonl;
    let input = b"{\"text\":\"mail jane.fake@corp-mail.io\"}\r\n{\"text\":\"plain\"}";
    let out = redact_jsonl(redactor(), input, &mut Placeholders::new()).unwrap();
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].contains("<EMAIL#1>") && !lines[0].contains("corp-mail"));
    let err = redact_jsonl(redactor(), b"{\"text\":1}", &mut Placeholders::new()).unwrap_err();
    assert!(
        matches!(err, RedactError::TextNotString { line: 1 }),
        "{err}"
    );
}

#[test]
fn a_redactor_is_shared_across_threads() {
    fn shareable<T: Send + Sync>(_: &T) {}
    shareable(redactor());
    let handles: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                let mut book = Placeholders::new();
                redactor()
                    .redact("x=ghp_FAKEfake0123456789abcdefABCDEFfake01", &mut book)
                    .text
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), "x=<SECRET:github-pat#1>");
    }
}

#[test]
fn non_ascii_names_are_replaced_once_per_person_on_char_boundaries() {
    let mut id = Identity::none();
    id.add_full_name("Zoë Fakenamé");
    let r = Redactor::new(&id).unwrap();
    let text =
        "— reviewed by Zoë Fakenamé (zoë.fakenamé), ghp_FAKEfake0123456789abcdefABCDEFfake01 ✓";
    let out = r.redact(text, &mut Placeholders::new());
    assert_eq!(
        out.text,
        "— reviewed by <NAME#1> (<NAME#1>), <SECRET:github-pat#1> ✓"
    );
    for f in &out.findings {
        assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
    }
}

#[test]
fn an_editor_on_a_password_file_is_not_a_prompt() {
    let r = redactor();
    let ks = KeyStroke::type_str("def reset(user):\n");
    let out = r
        .redact_keys(
            &ks,
            Some("password_reset.py - Visual Studio Code"),
            &mut Placeholders::new(),
        )
        .unwrap();
    assert!(out.findings.is_empty(), "{:?}", out.findings);
    assert!(out.masked.iter().all(|m| !m));
}
