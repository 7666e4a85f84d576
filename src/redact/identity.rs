//! The engineer's identity: username, full name, hostname and home path.
//! These are replaced wherever they appear, in any case, so an export never
//! names the person or the machine it came from.
//!
//! An [`Identity`] is filled from the OS ([`Identity::from_os`]) or built
//! explicitly, so the exporter can add names from the config.
//!
//! Git knows the engineer by the name and e-mail they commit with, which
//! need not be the account's full name: `user.name` and `user.email` of the
//! global git config and of each watched workspace's repository are added
//! too, so a `Signed-off-by:` line is replaced. The config files are parsed
//! here, not by running `git`: nothing in a workspace gets to run.

use std::path::Path;

/// What kind of identity term a value is; it picks the placeholder label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    User,
    Name,
    Host,
    Home,
}

impl IdentityKind {
    pub fn rule(self) -> &'static str {
        match self {
            IdentityKind::User => "username",
            IdentityKind::Name => "full-name",
            IdentityKind::Host => "hostname",
            IdentityKind::Home => "home-path",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            IdentityKind::User => "USER",
            IdentityKind::Name => "NAME",
            IdentityKind::Host => "HOST",
            IdentityKind::Home => "HOME",
        }
    }
}

/// Account names that identify nobody; replacing them would wreck code
/// (`root`, `admin`, `user`...) without protecting anyone.
pub const GENERIC_ACCOUNTS: &[&str] = &[
    "root",
    "admin",
    "user",
    "dev",
    "ubuntu",
    "debian",
    "runner",
    "ci",
    "test",
    "guest",
    "vagrant",
    "pi",
    "ec2-user",
    "nobody",
    "builder",
    "localhost",
    "host",
    "server",
    "computer",
];

/// The terms to replace. Each term is matched ASCII-case-insensitively and
/// only when not glued to other letters or digits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    terms: Vec<(IdentityKind, String)>,
}

impl Identity {
    /// An identity that replaces nothing (tests, or text known to be clean).
    pub fn none() -> Identity {
        Identity::default()
    }

    /// The current user's login name, full name (GECOS), hostname and home
    /// directory, as the OS reports them. Generic account names (`root`,
    /// `ubuntu`...) are left out; see `GENERIC_ACCOUNTS`.
    pub fn from_os() -> Identity {
        let mut id = Identity::none();
        id.add_user(&whoami::username());
        let real = whoami::realname();
        if real != whoami::username() {
            id.add_full_name(&real);
        }
        if let Ok(host) = whoami::fallible::hostname() {
            id.add_host(&host);
        }
        if let Some(home) = std::env::var_os("HOME") {
            id.add_home(&home.to_string_lossy());
        }
        id.add_git_global(
            std::env::var_os("HOME").as_deref().map(Path::new),
            std::env::var_os("XDG_CONFIG_HOME")
                .as_deref()
                .map(Path::new),
            std::env::var_os("GIT_CONFIG_GLOBAL")
                .as_deref()
                .map(Path::new),
        );
        id
    }

    /// `user.name` and `user.email` from the global git config: the file
    /// `GIT_CONFIG_GLOBAL` names, or else `$XDG_CONFIG_HOME/git/config`
    /// (`~/.config/git/config`) and `~/.gitconfig`, as git reads them.
    pub fn add_git_global(
        &mut self,
        home: Option<&Path>,
        xdg_config_home: Option<&Path>,
        git_config_global: Option<&Path>,
    ) -> &mut Identity {
        if let Some(f) = git_config_global {
            return self.add_git_config_file(f);
        }
        let xdg = xdg_config_home
            .map(Path::to_path_buf)
            .or_else(|| home.map(|h| h.join(".config")));
        if let Some(x) = xdg {
            self.add_git_config_file(&x.join("git/config"));
        }
        if let Some(h) = home {
            self.add_git_config_file(&h.join(".gitconfig"));
        }
        self
    }

    /// `user.name` and `user.email` from the repository at `dir`: its
    /// `.git/config`, or, when `.git` is a file (a linked worktree or a
    /// submodule), the config of the git directory it points to and of
    /// that directory's common directory.
    pub fn add_git_repo(&mut self, dir: &Path) -> &mut Identity {
        let dot_git = dir.join(".git");
        let git_dir = if dot_git.is_file() {
            let Some(text) = read_small(&dot_git) else {
                return self;
            };
            let Some(target) = text.lines().find_map(|l| l.strip_prefix("gitdir:")) else {
                return self;
            };
            dir.join(target.trim())
        } else {
            dot_git
        };
        self.add_git_config_file(&git_dir.join("config"));
        if let Some(common) = read_small(&git_dir.join("commondir")) {
            self.add_git_config_file(&git_dir.join(common.trim()).join("config"));
        }
        self
    }

    fn add_git_config_file(&mut self, path: &Path) -> &mut Identity {
        if let Some(text) = read_small(path) {
            let (name, email) = git_user(&text);
            if let Some(n) = name {
                self.add_full_name(&n);
            }
            if let Some(e) = email {
                self.push(IdentityKind::User, &e);
            }
        }
        self
    }

    fn push(&mut self, kind: IdentityKind, value: &str) {
        let v = value.trim();
        if v.chars().count() < 2 || GENERIC_ACCOUNTS.contains(&v.to_ascii_lowercase().as_str()) {
            return;
        }
        if !self.terms.iter().any(|(_, t)| t.eq_ignore_ascii_case(v)) {
            self.terms.push((kind, v.to_owned()));
        }
    }

    pub fn add_user(&mut self, user: &str) -> &mut Identity {
        self.push(IdentityKind::User, user);
        self
    }

    /// A full name, and the spellings it takes in code and e-mail:
    /// `Jane Q. Doe`, `jane.doe`, `jane_doe`, `janedoe`, `Doe, Jane`.
    pub fn add_full_name(&mut self, name: &str) -> &mut Identity {
        let parts: Vec<&str> = name
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|p| !p.is_empty())
            .collect();
        if parts.is_empty() {
            return self;
        }
        self.push(IdentityKind::Name, &parts.join(" "));
        if parts.len() >= 2 {
            let first = parts[0];
            let last = parts[parts.len() - 1];
            for sep in [".", "_", "-", ""] {
                self.push(IdentityKind::Name, &format!("{first}{sep}{last}"));
            }
            self.push(IdentityKind::Name, &format!("{last}, {first}"));
            self.push(IdentityKind::Name, &format!("{first} {last}"));
        }
        self
    }

    /// A hostname, and its first label when it is fully qualified.
    pub fn add_host(&mut self, host: &str) -> &mut Identity {
        self.push(IdentityKind::Host, host);
        if let Some((short, _)) = host.split_once('.') {
            self.push(IdentityKind::Host, short);
        }
        self
    }

    pub fn add_home(&mut self, home: &str) -> &mut Identity {
        let h = home.trim_end_matches('/');
        if h.len() > 1 {
            self.push(IdentityKind::Home, h);
        }
        self
    }

    pub fn terms(&self) -> &[(IdentityKind, String)] {
        &self.terms
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// A config file's text, when it exists and is small enough to be a
/// config (a missing file is the common case and means nothing).
fn read_small(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(1 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// The last `user.name` and `user.email` in a git config file's text (git's
/// own rule: a later value wins). Section and key names are
/// case-insensitive; values may be quoted; `#` and `;` start comments
/// outside quotes. `[include]` files are not followed.
pub fn git_user(text: &str) -> (Option<String>, Option<String>) {
    let (mut name, mut email) = (None, None);
    let mut in_user = false;
    for line in text.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix('[') {
            let section = rest.split([']', ' ', '"']).next().unwrap_or("");
            in_user = section.eq_ignore_ascii_case("user") && !rest.contains('"');
            continue;
        }
        if !in_user {
            continue;
        }
        let Some((key, value)) = l.split_once('=') else {
            continue;
        };
        let value = git_value(value);
        if value.is_empty() {
            continue;
        }
        match key.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(value),
            "email" => email = Some(value),
            _ => {}
        }
    }
    (name, email)
}

/// A git config value: quotes removed, escapes resolved, a trailing comment
/// dropped.
fn git_value(raw: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = raw.trim().chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => {}
            },
            '#' | ';' if !quoted => break,
            _ => out.push(c),
        }
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_spellings_and_skips_generic_accounts() {
        let mut id = Identity::none();
        id.add_user("jdoe")
            .add_user("root")
            .add_full_name("Jane Doe")
            .add_host("jane-laptop.corp.example")
            .add_home("/home/jdoe/");
        let terms: Vec<&str> = id.terms().iter().map(|(_, t)| t.as_str()).collect();
        for t in [
            "jdoe",
            "Jane Doe",
            "Jane.Doe",
            "Jane_Doe",
            "JaneDoe",
            "Doe, Jane",
            "jane-laptop",
            "/home/jdoe",
        ] {
            assert!(terms.contains(&t), "{t} missing from {terms:?}");
        }
        assert!(!terms.contains(&"root"));
    }

    #[test]
    fn git_config_user_is_parsed_as_git_does() {
        let text = "[core]\n\tname = not-me\n[User]\n\tName = \"Maggie Whitfield\" ; work\n\temail = m@x.io\n[user \"sub\"]\n\tname = Other\n";
        assert_eq!(
            git_user(text),
            (Some("Maggie Whitfield".into()), Some("m@x.io".into()))
        );
        assert_eq!(git_user("[user]\n"), (None, None));
    }

    #[test]
    fn from_os_knows_the_user() {
        let id = Identity::from_os();
        let user = whoami::username();
        let generic = GENERIC_ACCOUNTS.contains(&user.to_ascii_lowercase().as_str());
        assert_eq!(
            id.terms()
                .iter()
                .any(|(k, t)| *k == IdentityKind::User && *t == user),
            !generic && user.chars().count() >= 2
        );
    }
}
