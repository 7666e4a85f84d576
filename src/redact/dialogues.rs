//! Password prompts in typed text: which command lines open a dialogue
//! whose answers are secrets, how long that dialogue can last, and which
//! window titles ask for a password.
//!
//! A password typed at a terminal is invisible to the text detectors: the
//! prompt is printed, not typed, so nothing in the typed text says "what
//! follows is a password" except the command before it. The programs that
//! prompt are kept as a data table ([`DIALOGUES`]), each row with a test
//! vector, as `rules.rs` keeps the secret rules. Errors go towards masking:
//! after a prompting command every line is masked, retries and usernames
//! included, until a line that looks like a shell command comes back or
//! the dialogue's longest run (retries included) is over.

use crate::shell::{self, Call, Invocation};

/// When a program prompts.
#[derive(Clone, Copy, Debug)]
pub enum When {
    /// Whatever its arguments.
    Always,
    /// When one of these words is among its arguments.
    Arg(&'static [&'static str]),
    /// When an argument starts with one of these (`-s` in `read -rs`).
    Cluster(char),
    /// When `-u`/`--user` is given a value without `:password` (curl).
    UserWithoutPassword,
    /// When an argument is a remote path `host:path` (rsync over ssh).
    RemotePath,
}

/// One program's password dialogue.
#[derive(Debug)]
pub struct Dialogue {
    /// Program base names (`gpg` also matches `gpg2`).
    pub programs: &'static [&'static str],
    pub when: When,
    /// The most lines the dialogue can read, retries included; each is
    /// masked unless it looks like a shell command.
    pub answers: usize,
    /// Lines at the start that are answers whatever they look like.
    pub sure: usize,
    /// What it asks, in order.
    pub asks: &'static str,
    /// A test vector: a command line, then the lines typed in answer (all
    /// of which must be masked).
    pub example: (&'static str, &'static [&'static str]),
}

const fn d(
    programs: &'static [&'static str],
    when: When,
    answers: usize,
    sure: usize,
    asks: &'static str,
    example: (&'static str, &'static [&'static str]),
) -> Dialogue {
    Dialogue {
        programs,
        when,
        answers,
        sure,
        asks,
        example,
    }
}

const MYSQL: &[&str] = &[
    "mysql",
    "mariadb",
    "mysqldump",
    "mysqladmin",
    "mariadb-dump",
    "mysqlimport",
    "mysqlshow",
    "mysqlcheck",
    "mysqlpump",
    "mysqlsh",
    "mysqlbinlog",
];
const PSQL: &[&str] = &[
    "psql",
    "pg_dump",
    "pg_dumpall",
    "pg_restore",
    "createdb",
    "dropdb",
    "dropuser",
    "pg_isready",
    "vacuumdb",
    "reindexdb",
    "pgbench",
    "pg_basebackup",
];

/// Every program known to prompt for a secret on the terminal.
pub const DIALOGUES: &[Dialogue] = &[
    d(
        &["sudo", "doas", "pkexec"],
        When::Always,
        3,
        0,
        "password; again after each typo (3 tries)",
        ("sudo apt install x", &["hunter2typo", "hunter2-fake"]),
    ),
    d(
        &["su"],
        When::Always,
        2,
        0,
        "password (one try; a new `su` starts over)",
        ("su -", &["R00t-fake-pw"]),
    ),
    d(
        &["passwd", "gpasswd", "vncpasswd", "smbpasswd"],
        When::Always,
        9,
        2,
        "current password (not as root), new, new again; 3 rounds on a mismatch",
        ("passwd", &["0ld-fake-pw", "N3w-fake-pw", "N3w-fake-pw"]),
    ),
    d(
        &["login"],
        When::Always,
        4,
        0,
        "user, password; retries",
        ("login", &["bob", "L0gin-fake-pw"]),
    ),
    d(
        &[
            "ssh",
            "scp",
            "sftp",
            "slogin",
            "ssh-copy-id",
            "sshfs",
            "autossh",
            "mosh",
        ],
        When::Always,
        4,
        0,
        "host key `yes`, password (3 tries)",
        ("ssh admin@db1", &["yes", "Ssh-fake-pw"]),
    ),
    d(
        &["rsync"],
        When::RemotePath,
        4,
        0,
        "as ssh",
        ("rsync -a src/ db1:/srv/", &["Rsync-fake-pw"]),
    ),
    d(
        &["ssh-add"],
        When::Always,
        3,
        0,
        "key passphrase (3 tries)",
        ("ssh-add ~/.ssh/id_ed25519", &["Agent-fake-phrase"]),
    ),
    d(
        &["ssh-keygen"],
        When::Always,
        6,
        0,
        "file, passphrase, same again (or old, new, new with -p); again on a mismatch",
        (
            "ssh-keygen -t ed25519",
            &["", "Keygen-fake-phrase", "Keygen-fake-phrase"],
        ),
    ),
    d(
        &["htpasswd"],
        When::Always,
        2,
        0,
        "new password, re-type",
        ("htpasswd -c .htpasswd bob", &["Htp-fake-pw", "Htp-fake-pw"]),
    ),
    d(
        MYSQL,
        When::Arg(&["-p", "--password"]),
        1,
        0,
        "password",
        ("mysql -u root -p prod", &["Mysql-fake-pw"]),
    ),
    d(
        PSQL,
        When::Arg(&["-W", "--password"]),
        1,
        0,
        "password",
        ("psql -h db1 -U app -W", &["Psql-fake-pw"]),
    ),
    d(
        &["createuser"],
        When::Arg(&["-P", "--pwprompt", "-W", "--password"]),
        3,
        0,
        "new role's password, again; the server's password",
        ("createuser -P app", &["Role-fake-pw", "Role-fake-pw"]),
    ),
    d(
        &["mongo", "mongosh"],
        When::Arg(&["-p", "--password"]),
        1,
        0,
        "password",
        ("mongosh -u admin -p", &["Mongo-fake-pw"]),
    ),
    d(
        &["redis-cli", "valkey-cli"],
        When::Arg(&["--askpass"]),
        1,
        0,
        "password",
        ("redis-cli --askpass", &["Redis-fake-pw"]),
    ),
    d(
        &["gpg", "gpg2"],
        When::Always,
        3,
        0,
        "passphrase (pinentry in the terminal), repeat for a new one",
        (
            "gpg --symmetric notes.txt",
            &["Gpg-fake-phrase", "Gpg-fake-phrase"],
        ),
    ),
    d(
        &["gpg", "gpg2"],
        When::Arg(&[
            "--gen-key",
            "--full-gen-key",
            "--full-generate-key",
            "--generate-key",
            "--quick-gen-key",
            "--quick-generate-key",
            "--edit-key",
            "--passwd",
        ]),
        14,
        0,
        "key type, size, expiry, confirm, name, e-mail, comment, okay, passphrase twice",
        (
            "gpg --full-generate-key",
            &[
                "1",
                "4096",
                "0",
                "y",
                "Bob",
                "bob@example.org",
                "",
                "O",
                "Gen-fake-phrase",
                "Gen-fake-phrase",
            ],
        ),
    ),
    d(
        &["openssl"],
        When::Always,
        4,
        0,
        "pass phrase (and verify) for a key, import or export password",
        (
            "openssl pkcs12 -export -in c.pem -inkey k.pem -out c.p12",
            &["Pkcs-fake-pw", "Pkcs-fake-pw"],
        ),
    ),
    d(
        &["openssl"],
        When::Arg(&["req", "ca"]),
        16,
        0,
        "PEM pass phrase twice, the subject's fields, a challenge password",
        (
            "openssl req -new -newkey rsa:2048 -keyout k.pem -out r.csr",
            &[
                "Req-fake-phrase",
                "Req-fake-phrase",
                "FR",
                "",
                "Paris",
                "Acme",
                "",
                "db1",
                "",
                "Chal-fake-pw",
                "",
            ],
        ),
    ),
    d(
        &["ansible-vault"],
        When::Always,
        3,
        0,
        "vault password, confirm for a new one",
        (
            "ansible-vault create secrets.yml",
            &["Vault-fake-pw", "Vault-fake-pw"],
        ),
    ),
    d(
        &[
            "ansible",
            "ansible-playbook",
            "ansible-console",
            "ansible-pull",
        ],
        When::Arg(&[
            "--ask-vault-pass",
            "--ask-vault-password",
            "--ask-pass",
            "-k",
            "--ask-become-pass",
            "-K",
            "--vault-id",
        ]),
        3,
        0,
        "SSH password, become password, vault password",
        ("ansible-playbook site.yml -K", &["Become-fake-pw"]),
    ),
    d(
        &["vault", "bao"],
        When::Arg(&["login", "unseal"]),
        2,
        0,
        "token, password or unseal key",
        ("vault login", &["hvs-fake-token-value"]),
    ),
    d(
        &["kinit", "kpasswd"],
        When::Always,
        3,
        0,
        "Kerberos password (kpasswd: old, new, new)",
        ("kinit bob@ACME.IO", &["Krb-fake-pw"]),
    ),
    d(
        &["git"],
        When::Arg(&[
            "push",
            "pull",
            "fetch",
            "clone",
            "ls-remote",
            "submodule",
            "remote",
        ]),
        4,
        0,
        "username, password or token (HTTPS), once more on a failure",
        ("git push origin main", &["bob", "ghp-fake-token-value"]),
    ),
    d(
        &["svn", "hg"],
        When::Always,
        4,
        0,
        "username, password",
        (
            "svn checkout https://svn.acme.io/r",
            &["bob", "Svn-fake-pw"],
        ),
    ),
    d(
        &[
            "docker", "podman", "nerdctl", "buildah", "skopeo", "helm", "oras", "crane",
        ],
        When::Arg(&["login"]),
        3,
        0,
        "username, password",
        ("docker login registry.acme.io", &["bob", "Dock-fake-pw"]),
    ),
    d(
        &["npm", "yarn", "pnpm"],
        When::Arg(&["login", "adduser"]),
        4,
        0,
        "username, password, e-mail, one-time code",
        (
            "npm login",
            &["bob", "Npm-fake-pw", "bob@example.org", "123456"],
        ),
    ),
    d(
        &["oc", "cf", "heroku", "az", "twine"],
        When::Arg(&["login", "upload", "-u"]),
        3,
        0,
        "username, password",
        ("oc login https://api.acme.io:6443", &["bob", "Oc-fake-pw"]),
    ),
    d(
        &["gh", "glab"],
        When::Arg(&["login"]),
        4,
        0,
        "menu answers, then a token",
        ("gh auth login", &["", "", "Y", "ghp-fake-token-value"]),
    ),
    d(
        &["aws"],
        When::Arg(&["configure"]),
        4,
        0,
        "access key id, secret access key, region, format",
        (
            "aws configure",
            &[
                "AKIA-fake-key-id",
                "aws-fake-secret-key",
                "eu-west-3",
                "json",
            ],
        ),
    ),
    d(
        &["pass", "gopass"],
        When::Arg(&["insert", "add"]),
        2,
        0,
        "password, again",
        ("pass insert web/bank", &["Bank-fake-pw", "Bank-fake-pw"]),
    ),
    d(
        &["op", "bw", "lpass"],
        When::Arg(&["signin", "login", "unlock", "add"]),
        4,
        0,
        "e-mail, secret key, master password, code",
        ("bw unlock", &["Master-fake-pw"]),
    ),
    d(
        &["keytool"],
        When::Always,
        12,
        0,
        "keystore password, again, the subject's fields, confirm, key password",
        (
            "keytool -genkeypair -alias app -keystore app.jks",
            &[
                "Store-fake-pw",
                "Store-fake-pw",
                "Bob",
                "Dev",
                "Acme",
                "Paris",
                "IDF",
                "FR",
                "yes",
            ],
        ),
    ),
    d(
        &[
            "cryptsetup",
            "veracrypt",
            "encfs",
            "gocryptfs",
            "age",
            "rage",
            "zipcloak",
        ],
        When::Always,
        4,
        0,
        "`YES`, passphrase, verify",
        (
            "cryptsetup luksFormat /dev/sdb1",
            &["YES", "Luks-fake-phrase", "Luks-fake-phrase"],
        ),
    ),
    d(
        &["zip"],
        When::Arg(&["-e", "--encrypt"]),
        2,
        0,
        "password, verify",
        ("zip -e out.zip notes.txt", &["Zip-fake-pw", "Zip-fake-pw"]),
    ),
    d(
        &["unzip", "7z", "7za", "7zr"],
        When::Always,
        1,
        0,
        "password of an encrypted archive",
        ("unzip out.zip", &["Zip-fake-pw"]),
    ),
    d(
        &["read"],
        When::Cluster('s'),
        1,
        0,
        "a silent read: a secret by intent",
        ("read -rs TOKEN", &["Read-fake-secret"]),
    ),
    d(
        &["curl"],
        When::UserWithoutPassword,
        1,
        0,
        "host password for the user",
        ("curl -u bob https://api.acme.io/", &["Curl-fake-pw"]),
    ),
    d(
        &["wget"],
        When::Arg(&["--ask-password"]),
        1,
        0,
        "password",
        (
            "wget --ask-password --user=bob https://acme.io/f",
            &["Wget-fake-pw"],
        ),
    ),
    d(
        &[
            "ldapsearch",
            "ldapmodify",
            "ldapadd",
            "ldapdelete",
            "ldapwhoami",
            "ldappasswd",
        ],
        When::Arg(&["-W", "-S", "-A"]),
        3,
        0,
        "bind password; new password twice",
        ("ldapsearch -x -D cn=admin -W", &["Ldap-fake-pw"]),
    ),
    d(
        &[
            "smbclient",
            "rpcclient",
            "ftp",
            "lftp",
            "telnet",
            "openconnect",
            "sshpass",
            "mysql_secure_installation",
            "nmcli",
            "wpa_passphrase",
            "newgrp",
            "chsh",
            "chfn",
        ],
        When::Always,
        4,
        0,
        "username, password",
        ("smbclient //fs1/share -U bob", &["Smb-fake-pw"]),
    ),
];

/// Whether `name` is `prog`, or `prog` with a version (`gpg2`).
fn same_program(name: &str, prog: &str) -> bool {
    name.strip_prefix(prog)
        .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit()))
}

fn applies(when: When, call: &Call) -> bool {
    let args = || call.args.iter().map(|w| w.text.as_str());
    match when {
        When::Always => true,
        When::Arg(words) => args().any(|a| {
            words.contains(&a)
                || a.split_once('=')
                    .is_some_and(|(k, _)| words.contains(&k) && k.starts_with("--"))
        }),
        When::Cluster(c) => args().any(|a| {
            a.len() > 1 && a.starts_with('-') && !a.starts_with("--") && a[1..].contains(c)
        }),
        When::UserWithoutPassword => {
            let a: Vec<&str> = args().collect();
            a.iter().enumerate().any(|(i, w)| {
                let v = match *w {
                    "-u" | "--user" | "--proxy-user" | "-U" => a.get(i + 1).copied(),
                    _ => w
                        .strip_prefix("--user=")
                        .or_else(|| w.strip_prefix("-u").filter(|v| !v.is_empty())),
                };
                v.is_some_and(|v| !v.contains(':'))
            })
        }
        When::RemotePath => args().any(|a| {
            !a.starts_with('-')
                && a.split_once(':')
                    .is_some_and(|(h, _)| !h.is_empty() && !h.contains('/'))
        }),
    }
}

/// The most answer lines a command line's password dialogues can read:
/// the sum over every program it runs (`sudo mysql -p` asks twice), and
/// for each program its longest matching row. `None` when none prompts.
pub fn dialogue_length(line: &str) -> Option<(usize, usize)> {
    let mut total: Option<(usize, usize)> = None;
    for inv in shell::invocations(line) {
        for call in inv.calls() {
            let best = DIALOGUES
                .iter()
                .filter(|row| row.programs.iter().any(|p| same_program(&call.name, p)))
                .filter(|row| applies(row.when, call))
                .map(|row| (row.answers, row.sure))
                .max();
            if let Some((a, s)) = best {
                let (ta, ts) = total.unwrap_or((0, 0));
                total = Some((ta + a, ts + s));
            }
        }
    }
    total
}

/// Programs common enough at a shell prompt that a line running one is
/// a command, not an answer to a prompt.
const COMMON: &[&str] = &[
    "ls",
    "cd",
    "pwd",
    "cat",
    "less",
    "more",
    "head",
    "tail",
    "grep",
    "rg",
    "ag",
    "find",
    "fd",
    "echo",
    "printf",
    "vim",
    "vi",
    "nvim",
    "nano",
    "emacs",
    "code",
    "hx",
    "micro",
    "git",
    "make",
    "cmake",
    "cargo",
    "rustc",
    "rustup",
    "go",
    "python",
    "python3",
    "pip",
    "pip3",
    "node",
    "npm",
    "npx",
    "yarn",
    "pnpm",
    "deno",
    "bun",
    "java",
    "javac",
    "mvn",
    "gradle",
    "gcc",
    "clang",
    "g++",
    "apt",
    "apt-get",
    "dnf",
    "yum",
    "pacman",
    "brew",
    "snap",
    "flatpak",
    "docker",
    "podman",
    "kubectl",
    "helm",
    "terraform",
    "ansible",
    "systemctl",
    "journalctl",
    "service",
    "ps",
    "top",
    "htop",
    "kill",
    "killall",
    "pkill",
    "df",
    "du",
    "free",
    "uname",
    "whoami",
    "id",
    "env",
    "export",
    "unset",
    "source",
    ".",
    "alias",
    "history",
    "clear",
    "exit",
    "logout",
    "mkdir",
    "rmdir",
    "rm",
    "cp",
    "mv",
    "ln",
    "touch",
    "chmod",
    "chown",
    "tar",
    "zip",
    "unzip",
    "gzip",
    "curl",
    "wget",
    "ping",
    "ip",
    "ifconfig",
    "ss",
    "netstat",
    "dig",
    "nslookup",
    "mount",
    "umount",
    "lsblk",
    "diff",
    "sort",
    "uniq",
    "wc",
    "cut",
    "sed",
    "awk",
    "jq",
    "yq",
    "xargs",
    "tee",
    "tmux",
    "screen",
    "man",
    "which",
    "type",
    "file",
    "stat",
    "date",
    "sleep",
    "true",
    "false",
    "test",
    "[",
    "history",
    "fg",
    "bg",
    "jobs",
    "ssh",
    "scp",
    "rsync",
    "mysql",
    "psql",
    "sqlite3",
    "redis-cli",
    "gh",
    "tig",
    "lazygit",
    "watch",
    "time",
    "env",
    "set",
    "unalias",
    "klist",
    "kdestroy",
    "sudoedit",
    "nmap",
    "openssl",
    "gpg",
    "vault",
    "journalctl",
];

/// Whether a line typed after a prompting command is a shell command (the
/// dialogue is over: sudo remembered the password, the key needed none)
/// rather than an answer. An unknown single word is an answer.
pub fn looks_like_command(line: &str, prompting: &str) -> bool {
    let t = line.trim();
    if t.is_empty() {
        return false;
    }
    let first = t.split_whitespace().next().unwrap_or("");
    if (first.starts_with("./") || first.starts_with("~/") || first.starts_with('/'))
        && first.len() > 2
        && first.bytes().filter(|b| *b == b'/').count() >= 1
        && !first.contains(|c: char| c.is_ascii_uppercase())
    {
        return true;
    }
    let prompting_prog = shell::invocations(prompting)
        .into_iter()
        .find_map(|i| i.program.or_else(|| i.wrappers.into_iter().next()))
        .map(|c| c.name);
    let invs: Vec<Invocation> = shell::invocations(t);
    let Some(inv) = invs.first() else {
        return false;
    };
    let Some(call) = inv.calls().next() else {
        return false;
    };
    let name = call.name.as_str();
    let several_words = t.contains(char::is_whitespace);
    if COMMON.contains(&name)
        || shell::wrapper(name).is_some()
        || dialogue_length(t).is_some()
        || (several_words && prompting_prog.as_deref() == Some(name))
    {
        return true;
    }
    // `tool -x arg`: a lowercase program name followed by an option.
    several_words
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.+".contains(&b))
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && t.split_whitespace().skip(1).any(|w| {
            w.len() > 1
                && w.starts_with('-')
                && w[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '-')
        })
}

// ---------------------------------------------------------------------------
// Window titles

/// What an editor's window title ends with, after its last ` - `/` — `.
const EDITORS: &[&str] = &[
    "visual studio code",
    "code",
    "code - oss",
    "vscodium",
    "cursor",
    "nvim",
    "vim",
    "gvim",
    "neovim",
    "gedit",
    "text editor",
    "gnome text editor",
    "sublime text",
    "intellij idea",
    "intellij idea ultimate",
    "intellij idea community edition",
    "pycharm",
    "clion",
    "goland",
    "webstorm",
    "rustrover",
    "rider",
    "phpstorm",
    "rubymine",
    "datagrip",
    "android studio",
    "kate",
    "kwrite",
    "mousepad",
    "geany",
    "pluma",
    "xed",
    "atom",
    "notepad++",
    "gnu emacs",
    "emacs",
    "zed",
    "lapce",
    "featherpad",
    "leafpad",
    "kdevelop",
    "qt creator",
    "eclipse",
];

/// Editors run in a terminal, whose title is often the command line.
const TERMINAL_EDITORS: &[&str] = &[
    "vim",
    "vi",
    "nvim",
    "nano",
    "emacs",
    "emacsclient",
    "hx",
    "helix",
    "micro",
    "kak",
    "ne",
    "joe",
    "mcedit",
    "view",
    "less",
];

/// A file name: a stem and an extension of letters and digits, or a path.
fn is_file_name(s: &str) -> bool {
    let s = s.trim();
    if s.is_empty() || s.contains(char::is_whitespace) || s.contains('@') {
        return false;
    }
    let last = s.rsplit(['/', '\\']).next().unwrap_or(s);
    let dotted = last.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty()
            && (1..=10).contains(&ext.len())
            && ext.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    dotted
        || matches!(
            last,
            "Makefile" | "Dockerfile" | "Containerfile" | "README" | "LICENSE" | "Justfile"
        )
        || (s.contains('/') && !last.is_empty())
}

/// The file part of a title segment: editors decorate it with a dirty
/// mark (`*`, `●`, `+`), a directory (`(~/dir)`) or a project (`[app]`).
fn file_part(seg: &str) -> &str {
    let mut s = seg.trim();
    s = s.trim_start_matches(['*', '●', '•', '+', ' ']);
    for open in [" (", " [", " +", " -", " •", " ●", " *"] {
        if let Some(i) = s.find(open) {
            s = &s[..i];
        }
    }
    s.trim_end_matches(['*', '+', ' ', '•', '●'])
}

/// A title's parts between ` - `, ` — ` and ` – `.
fn segments(t: &str) -> impl Iterator<Item = &str> {
    t.split(" - ")
        .flat_map(|s| s.split(" — "))
        .flat_map(|s| s.split(" – "))
}

/// Whether a title is an editor's, naming the file being edited: then the
/// text typed there is the file's, not the answer to a prompt, even when
/// the file is `password_reset.py`. Judged by the shapes editors give
/// their titles, never by a dotted word alone.
pub fn names_a_file_being_edited(title: &str) -> bool {
    let t = title.trim();
    // Emacs' default: the buffer's name alone.
    let bare = t
        .trim_start_matches(['*', '●'])
        .trim_end_matches(['*', '+', ' ']);
    if is_file_name(bare) {
        return true;
    }
    // A terminal titled with the editor's command line: `nvim notes.md`.
    let mut words = t.split_whitespace();
    if let Some(first) = words.next() {
        if TERMINAL_EDITORS.contains(&shell::basename(first))
            && words.any(|w| !w.starts_with('-') && is_file_name(w))
        {
            return true;
        }
    }
    let lower = t.to_lowercase();
    for sep in [" - ", " — ", " – "] {
        let Some(i) = lower.rfind(sep) else {
            continue;
        };
        let mut product = lower[i + sep.len()..].trim();
        if product.starts_with("gnu emacs") {
            product = "gnu emacs";
        }
        let product = product.trim_end_matches(|c: char| c.is_ascii_digit());
        // `Sublime Text (UNREGISTERED)`, `… (Administrator)`.
        let product = match product.find(" (") {
            Some(p) if product.ends_with(')') => &product[..p],
            _ => product,
        };
        // `Code - OSS` has the separator inside the product's name.
        let (product, head) = if lower.ends_with(" - code - oss") {
            ("code - oss", &t[..lower.len() - " - code - oss".len()])
        } else {
            (product, &t[..i])
        };
        if EDITORS.contains(&product) {
            return segments(head).any(|seg| is_file_name(file_part(seg)));
        }
    }
    // JetBrains' new UI: `project – src/name.ext`.
    if let Some((_, last)) = t.rsplit_once(" – ") {
        return is_file_name(file_part(last));
    }
    false
}

/// Whether a window title asks for a password, passphrase or PIN.
pub fn title_asks_for_password(title: &str) -> bool {
    if names_a_file_being_edited(title) {
        return false;
    }
    let l = title.to_lowercase();
    let words: Vec<&str> = l
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    [
        "password",
        "passwort",
        "mot de passe",
        "contraseña",
        "passphrase",
        "passcode",
        "unlock",
        "authenticat",
        "pinentry",
        "askpass",
        "keyring",
        "credential",
        "sign in",
        "sign-in",
        "log in",
        "verification code",
        "one-time",
        "security key",
        "sudo",
    ]
    .iter()
    .any(|k| l.contains(k))
        || words
            .iter()
            .any(|w| matches!(*w, "pin" | "login" | "logon" | "otp" | "2fa" | "totp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_prompts_on_its_example_and_masks_its_answers() {
        for row in DIALOGUES {
            let (cmd, answers) = row.example;
            let (len, sure) =
                dialogue_length(cmd).unwrap_or_else(|| panic!("{cmd}: no dialogue ({})", row.asks));
            assert!(len >= answers.len(), "{cmd}: {len} < {}", answers.len());
            assert!(sure <= len, "{cmd}");
            for (i, a) in answers.iter().enumerate() {
                assert!(
                    i < sure || !looks_like_command(a, cmd),
                    "{cmd}: answer {a:?} looks like a command"
                );
            }
        }
    }

    #[test]
    fn programs_are_found_behind_wrappers() {
        for cmd in [
            "sudo -u postgres psql -W",
            "env PGHOST=db1 psql --password",
            "time mysql -u root -p",
            "chronic gpg --symmetric f",
            "unbuffer ssh db1",
            "timeout 30 kinit bob",
            "nice -n 5 openssl pkcs12 -export -out c.p12",
            "bash -c 'docker login ghcr.io'",
            "sudo -v",
            "docker exec -it db mysql -u root -p",
            "podman exec -e A=1 pg psql -W",
            "kubectl -n prod exec -it web-0 -c app -- vault login",
            "ssh db1 sudo -v",
        ] {
            assert!(dialogue_length(cmd).is_some(), "{cmd}");
        }
        for cmd in ["docker exec db ls", "kubectl exec web-0 -- env"] {
            assert_eq!(dialogue_length(cmd), None, "{cmd}");
        }
        // sudo asks, then mysql asks: both dialogues are counted.
        assert_eq!(dialogue_length("sudo mysql -p").map(|l| l.0), Some(4));
        for cmd in [
            "ls -la",
            "mysql -u root prod",
            "psql -h db1",
            "git status",
            "cargo test",
        ] {
            assert_eq!(dialogue_length(cmd), None, "{cmd}");
        }
    }

    #[test]
    fn commands_end_a_dialogue() {
        for (line, after) in [
            ("sudo apt upgrade", "sudo apt update"),
            ("ls", "sudo -v"),
            ("git status", "git push"),
            ("rg TODO", "sudo apt install ripgrep"),
            ("./deploy.sh --prod", "ssh-add"),
            ("kubectl get pods -n web", "docker login"),
            ("su -", "su -"),
            ("exit", "ssh db1"),
        ] {
            assert!(looks_like_command(line, after), "{line}");
        }
        for (line, after) in [
            ("hunter2-fake", "sudo ls"),
            ("correct horse battery staple", "gpg -c f"),
            ("bob", "docker login"),
            ("Tr0ub4dor&3", "passwd"),
            ("", "passwd"),
        ] {
            assert!(!looks_like_command(line, after), "{line}");
        }
    }

    /// (title, asks for a password)
    const TITLES: &[(&str, bool)] = &[
        // Editors: the file's name is not a prompt, whatever it says.
        ("password_reset.py - acme-app - Visual Studio Code", false),
        ("● password_reset.py - Code", false),
        ("auth_login.rs - candor - Code - OSS", false),
        ("password_reset.py (~/src/acme) - NVIM", false),
        ("password_reset.py + (~/src/acme) - VIM1", false),
        ("*passwords.md (~/notes) - gedit", false),
        ("unlock_screen.c (~/src) - Text Editor", false),
        ("password_reset.py - Sublime Text", false),
        ("~/src/acme/login.py • - Sublime Text (UNREGISTERED)", false),
        ("PasswordService.java [acme-auth] - IntelliJ IDEA", false),
        ("acme-auth – PasswordService.kt", false),
        ("login_form.tsx — acme-web — Kate", false),
        ("passwd.conf", false),
        ("pin_pad.c - GNU Emacs at devbox", false),
        ("*credentials.rs - Mousepad", false),
        ("nvim password_reset.py", false),
        ("vim notes.md", false),
        // Prompts, including those that hold a dotted word.
        ("Enter PIN for token.p11", true),
        ("Password for margaret.whitfield@acmecorp.io", true),
        ("Password for 'https://bob@github.com':", true),
        ("[sudo] password for bob", true),
        ("Authentication Required", true),
        ("OpenSSH Authentication Passphrase request", true),
        ("Unlock Database - KeePassXC", true),
        ("Unlock Login Keyring", true),
        ("pinentry-gtk-2", true),
        ("Passphrase", true),
        ("Git Credential Manager", true),
        ("Sign in – Google Accounts — Mozilla Firefox", true),
        ("Login - Keycloak - Chromium", true),
        ("Enter your PIN", true),
        ("Two-factor authentication · GitHub — Mozilla Firefox", true),
        // Neither.
        ("bob@devbox: ~/src/acme", false),
        (
            "Inbox (3) - margaret.whitfield@acmecorp.io - Gmail — Mozilla Firefox",
            false,
        ),
        ("README.md · acme/app — Mozilla Firefox", false),
        ("Terminal", false),
        ("Spinner demo", false),
    ];

    #[test]
    fn title_shapes() {
        let mut wrong = Vec::new();
        for (title, asks) in TITLES {
            if title_asks_for_password(title) != *asks {
                wrong.push(*title);
            }
        }
        assert!(wrong.is_empty(), "misjudged titles: {wrong:#?}");
    }
}
