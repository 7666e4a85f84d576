//! The engineer's identity: username, full name, hostname and home path.
//! These are replaced wherever they appear, in any case, so an export never
//! names the person or the machine it came from.
//!
//! An [`Identity`] is filled from the OS ([`Identity::from_os`]) or built
//! explicitly, so the exporter can add names from the config.

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
        id
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
