//! The config loader (`config::Config::parse` and `Config::load`): any text
//! and any `CANDOR_*` variables give a config or an error that names the
//! key, variable or position, never a panic; a config written from a model
//! of the settings reads back as written; a typo in a key, a value of the
//! wrong type or a size or duration without a unit is refused by name.

use std::path::{Path, PathBuf};
use std::time::Duration;

use candor::config::{Config, ConfigError, KeyStoreChoice, ENV_VARS};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use toml::{Table, Value as Toml};

const REGRESSIONS: &str = "proptest-regressions/config.txt";

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(Path::new("config.toml"), text).map_err(|e| e.to_string())
}

/// One setting: its section, key, TOML value, and a check of the parsed
/// config against it.
#[derive(Clone, Debug)]
struct Setting {
    section: &'static str,
    key: &'static str,
    value: Toml,
}

/// Entries of a list: an empty (or blank) entry is refused by `load`, as
/// it would match everywhere.
fn strings(max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(".{0,15}[^\\s]", 0..max)
}

fn setting() -> impl Strategy<Value = Setting> {
    fn s(section: &'static str, key: &'static str, value: Toml) -> Setting {
        Setting {
            section,
            key,
            value,
        }
    }
    let arr = |v: Vec<String>| Toml::Array(v.into_iter().map(Toml::String).collect());
    prop_oneof![
        "/[a-z]{1,8}(/[a-z]{1,8}){0,3}".prop_map(|p| s("store", "data_dir", Toml::String(p))),
        select(vec!["auto", "keyring", "file"]).prop_map(|k| s(
            "store",
            "key_store",
            Toml::String(k.into())
        )),
        (1i64..=1_000_000).prop_map(|n| s("writer", "channel_capacity", Toml::Integer(n))),
        (1i64..=100_000).prop_map(|n| s("writer", "batch_max", Toml::Integer(n))),
        (1u32..=5_000).prop_map(|n| s("writer", "batch_interval", Toml::String(format!("{n}ms")))),
        (64u32..=4096).prop_map(|n| s("writer", "max_store_size", Toml::String(format!("{n}MiB")))),
        (1i64..=1000).prop_map(|n| s("capture", "mouse_rate_hz", Toml::Integer(n))),
        strings(5).prop_map(move |v| s("capture", "exclude_apps", arr(v))),
        prop::collection::vec("/home/[a-z]{1,8}/[a-z]{1,8}", 0..4).prop_map(move |v| s(
            "editor",
            "roots",
            arr(v)
        )),
        prop::collection::vec(
            prop_oneof!["\\*\\.[a-z]{1,4}", "[a-z]{1,8}/", "\\.[a-z]{1,8}\\*"],
            0..5
        )
        .prop_map(move |v| s("editor", "deny", arr(v))),
        (1u32..=65_536).prop_map(|n| s(
            "editor",
            "snapshot_max_bytes",
            Toml::String(format!("{n}KiB"))
        )),
        (10u32..=5_000).prop_map(|n| s("editor", "debounce", Toml::String(format!("{n}ms")))),
        strings(4).prop_map(move |v| s("redact", "names", arr(v))),
        strings(4).prop_map(move |v| s("redact", "users", arr(v))),
        strings(4).prop_map(move |v| s("redact", "hosts", arr(v))),
        (1i64..=10_000).prop_map(|n| s("ingest", "rate", Toml::Integer(n))),
        (1i64..=100_000).prop_map(|n| s("ingest", "burst", Toml::Integer(n))),
        prop::collection::vec("[a-z*?-]{1,12}", 0..5).prop_map(move |v| s("shell", "deny", arr(v))),
    ]
}

/// Settings with distinct keys, as a TOML document.
fn document(settings: &[Setting]) -> (Vec<Setting>, String) {
    let mut table = Table::new();
    let mut kept = Vec::new();
    for st in settings {
        let section = table
            .entry(st.section)
            .or_insert_with(|| Toml::Table(Table::new()));
        if let Toml::Table(t) = section {
            if !t.contains_key(st.key) {
                t.insert(st.key.into(), st.value.clone());
                kept.push(st.clone());
            }
        }
    }
    let text = toml::to_string(&table).expect("a table serializes");
    (kept, text)
}

fn strs(v: &Toml) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn ms(v: &Toml) -> Duration {
    let s = v.as_str().unwrap_or_default();
    Duration::from_millis(s.trim_end_matches("ms").parse().unwrap_or(0))
}

fn size(v: &Toml, unit: u64) -> u64 {
    let s = v.as_str().unwrap_or_default();
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<u64>().unwrap_or(0) * unit
}

/// Whether the parsed config holds the setting's value.
fn holds(c: &Config, st: &Setting) -> bool {
    let v = &st.value;
    let int = || v.as_integer().unwrap_or(-1);
    match (st.section, st.key) {
        ("store", "data_dir") => c.store.data_dir == v.as_str().map(PathBuf::from),
        ("store", "key_store") => {
            let want = match v.as_str() {
                Some("keyring") => KeyStoreChoice::Keyring,
                Some("file") => KeyStoreChoice::File,
                _ => KeyStoreChoice::Auto,
            };
            c.store.key_store == want
        }
        ("writer", "channel_capacity") => c.writer.channel_capacity as i64 == int(),
        ("writer", "batch_max") => c.writer.batch_max as i64 == int(),
        ("writer", "batch_interval") => c.writer.batch_interval == ms(v),
        ("writer", "max_store_size") => c.writer.max_store_size == Some(size(v, 1 << 20)),
        ("capture", "mouse_rate_hz") => i64::from(c.capture.mouse_rate_hz) == int(),
        ("capture", "exclude_apps") => c.capture.exclude_apps == strs(v),
        ("editor", "roots") => {
            c.editor.roots == strs(v).into_iter().map(PathBuf::from).collect::<Vec<_>>()
        }
        ("editor", "deny") => c.editor.deny == strs(v),
        ("editor", "snapshot_max_bytes") => c.editor.snapshot_max_bytes == size(v, 1 << 10),
        ("editor", "debounce") => c.editor.debounce == ms(v),
        ("redact", "names") => c.redact.names == strs(v),
        ("redact", "users") => c.redact.users == strs(v),
        ("redact", "hosts") => c.redact.hosts == strs(v),
        ("ingest", "rate") => i64::from(c.ingest.rate) == int(),
        ("ingest", "burst") => i64::from(c.ingest.burst) == int(),
        ("shell", "deny") => c.shell.deny == strs(v),
        _ => false,
    }
}

/// A value of another type than the setting's, or a size or duration
/// without a unit it knows.
fn wrong_value(st: &Setting, pick: Index) -> Toml {
    let choices: Vec<Toml> = match &st.value {
        Toml::Integer(_) => vec![
            Toml::String("12".into()),
            Toml::Float(1.5),
            Toml::Boolean(true),
            Toml::Integer(-1),
            Toml::Array(vec![]),
        ],
        Toml::String(_) if st.key == "key_store" => {
            vec![Toml::String("vault".into()), Toml::Integer(1)]
        }
        Toml::String(_) if st.key == "data_dir" => vec![Toml::Integer(1), Toml::Boolean(false)],
        // A bare number is a size in bytes, but never a duration.
        Toml::String(_) if st.key.ends_with("size") || st.key.ends_with("bytes") => vec![
            Toml::String("12 parsecs".into()),
            Toml::String("MiB".into()),
            Toml::String(String::new()),
            Toml::Integer(100),
        ],
        Toml::String(_) => vec![
            Toml::String("100".into()),
            Toml::String("12 parsecs".into()),
            Toml::String(String::new()),
            Toml::Integer(100),
        ],
        Toml::Array(_) => vec![
            Toml::String("one".into()),
            Toml::Array(vec![Toml::Integer(1)]),
            Toml::Integer(3),
        ],
        _ => vec![Toml::Boolean(true)],
    };
    choices[pick.index(choices.len())].clone()
}

/// Names the key: quoted as serde names it, or on the line the TOML
/// error shows with its position.
fn names(err: &str, key: &str) -> bool {
    err.contains(&format!("`{key}`")) || (err.contains("line ") && err.contains(key))
}

/// TOML-shaped text: section headers, assignments of known and unknown
/// keys with values of any type, and noise.
fn tomlish() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        select(vec![
            "[store]",
            "[writer]",
            "[capture]",
            "[editor]",
            "[redact]",
            "[ingest]",
            "[shell]",
            "[[writer]]",
            "[editor.deny]",
            "[nope]",
            "["
        ])
        .prop_map(String::from),
        (
            prop_oneof![
                select(vec![
                    "data_dir",
                    "key_store",
                    "channel_capacity",
                    "batch_max",
                    "batch_interval",
                    "max_store_size",
                    "mouse_rate_hz",
                    "exclude_apps",
                    "roots",
                    "deny",
                    "snapshot_max_bytes",
                    "debounce",
                    "names",
                    "rate",
                    "burst",
                    "store",
                    "writer"
                ])
                .prop_map(String::from),
                "[a-z_.\"]{1,10}",
            ],
            prop_oneof![
                "-?[0-9]{1,25}",
                "\"[^\"\\\\\\n]{0,20}\"",
                "\"[0-9]{0,22} ?[A-Za-z]{0,5}\"",
                select(vec![
                    "true",
                    "[]",
                    "[\"a\", 1]",
                    "{}",
                    "1.5e400",
                    "nan",
                    "inf",
                    "1979-05-27"
                ])
                .prop_map(String::from),
                "[^\\n]{0,12}",
            ],
        )
            .prop_map(|(k, v)| format!("{k} = {v}")),
        "[^\\n]{0,30}",
        Just(String::new()),
    ];
    prop::collection::vec(line, 0..12).prop_map(|l| l.join("\n"))
}

proptest! {
    #![proptest_config(crate::config(400, REGRESSIONS))]

    /// Any text, TOML-shaped or not: a config, or an error that says where.
    #[test]
    fn any_text_gives_a_config_or_a_located_error(
        text in prop_oneof![".{0,200}", "[\\s\\S]{0,200}", tomlish()],
    ) {
        if let Err(e) = parse(&text) {
            prop_assert!(e.starts_with("config file config.toml: "), "{}", e);
            prop_assert!(e.contains("line ") || e.contains('`'), "no key nor position in: {}", e);
        }
    }

}

proptest! {
    #![proptest_config(crate::config(150, REGRESSIONS))]

    /// A config written from a model of the settings reads back as
    /// written, and loads (file, then environment, then validation).
    #[test]
    fn written_settings_read_back(settings in prop::collection::vec(setting(), 0..12)) {
        let (kept, text) = document(&settings);
        let c = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        for st in &kept {
            prop_assert!(holds(&c, st), "{}.{} is not {:?} after reading\n{}", st.section, st.key, st.value, text);
        }
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, &text).expect("write the config");
        let loaded = Config::load(&path, true, Vec::new())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        for st in &kept {
            prop_assert!(holds(&loaded, st), "{}.{} changed by load", st.section, st.key);
        }
    }

}

proptest! {
    #![proptest_config(crate::config(200, REGRESSIONS))]

    /// A misspelt key, a value of the wrong type, a size or duration
    /// without a known unit: refused, naming the key.
    #[test]
    fn a_bad_setting_is_refused_by_name(
        settings in prop::collection::vec(setting(), 1..8),
        which in any::<Index>(),
        pick in any::<Index>(),
        typo in "[a-z]{1,3}",
        misspell in any::<bool>(),
    ) {
        let (mut kept, _) = document(&settings);
        let i = which.index(kept.len());
        let (key, want) = if misspell {
            let bad = format!("{}{typo}", kept[i].key);
            // `deny_unknown_fields` names it; nothing may read it as another key.
            let key: &'static str = Box::leak(bad.into_boxed_str());
            kept[i].key = key;
            (key, format!("`{key}`"))
        } else {
            kept[i].value = wrong_value(&kept[i], pick);
            (kept[i].key, kept[i].key.to_owned())
        };
        let (_, text) = document(&kept);
        match parse(&text) {
            Ok(_) => return Err(TestCaseError::fail(format!("accepted:\n{text}"))),
            Err(e) => prop_assert!(names(&e, key) && e.contains(&want), "{} not named in: {}\n{}", key, e, text),
        }
    }

}

proptest! {
    #![proptest_config(crate::config(200, REGRESSIONS))]

    /// Any `CANDOR_*` variables: a config, or an error naming the variable;
    /// other variables are ignored; valid values are applied.
    #[test]
    fn environment_variables_are_applied_or_named(
        vars in prop::collection::vec(
            (
                prop_oneof![
                    select(ENV_VARS.to_vec()).prop_map(String::from),
                    "CANDOR_[A-Z_]{0,12}",
                    "[A-Z_]{1,12}",
                ],
                prop_oneof![
                    "[0-9]{1,22}",
                    "[0-9]{1,5}(ms|s|m|h|KiB|MiB|GiB| parsecs)",
                    select(vec!["auto", "keyring", "file", "", "0", "-1"]).prop_map(String::from),
                    ".{0,12}",
                ],
            ),
            0..6,
        ),
    ) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("absent.toml");
        match Config::load(&path, false, vars.clone()) {
            Ok(c) => {
                // Each variable's last value is the one in force.
                for (i, (name, value)) in vars.iter().enumerate() {
                    if vars[i + 1..].iter().any(|(n, _)| n == name) {
                        continue;
                    }
                    match name.as_str() {
                        "CANDOR_WRITER_BATCH_MAX" => prop_assert_eq!(Ok(c.writer.batch_max), value.parse()),
                        "CANDOR_WRITER_CHANNEL_CAPACITY" => prop_assert_eq!(Ok(c.writer.channel_capacity), value.parse()),
                        "CANDOR_CAPTURE_MOUSE_RATE_HZ" => prop_assert_eq!(Ok(c.capture.mouse_rate_hz), value.parse()),
                        _ => {}
                    }
                }
            }
            Err(ConfigError::Env { name, message }) => {
                prop_assert!(ENV_VARS.contains(&name.as_str()) && vars.iter().any(|(n, _)| *n == name));
                prop_assert!(!message.is_empty());
            }
            Err(ConfigError::UnknownEnv { name, .. }) => {
                prop_assert!(name.starts_with("CANDOR_") && !ENV_VARS.contains(&name.as_str()));
                prop_assert!(vars.iter().any(|(n, _)| *n == name));
            }
            Err(ConfigError::Invalid { key, message }) => {
                prop_assert!(key.contains('.') && !message.is_empty(), "{}: {}", key, message);
            }
            Err(e) => return Err(TestCaseError::fail(format!("no config file, yet: {e}"))),
        }
    }
}
