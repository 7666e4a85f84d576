//! The secret rule table: one entry per kind of credential, with the keywords
//! that gate it, the regex whose `s` group is the secret, an optional entropy
//! floor, its own allowlist, and true- and false-positive vectors that the
//! tests run.
//!
//! The shape follows gitleaks' rule format, and several patterns are adapted
//! from gitleaks' rules (github.com/gitleaks/gitleaks, MIT licence, copyright
//! (c) 2019 Zachary Rice): the token prefixes and lengths of GitHub, GitLab,
//! Slack, Stripe, OpenAI, Anthropic, Hugging Face, Azure AD, JWT and the
//! cloud providers. The keyword-assignment rules and the keep-list are ours.
//!
//! Every vector here is fake: made-up strings in the providers' formats.

/// How a rule's value is judged once its regex matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// A provider-specific format: only the rule's entropy floor and obvious
    /// placeholders (`xxxx`, `<...>`) can veto it.
    Format,
    /// A value found by the name it is assigned to (`api_key = ...`): the
    /// whole keep-list applies, and the value must look random.
    Assigned,
    /// Like [`Check::Assigned`], but for passwords: people pick words, so the
    /// value need not look random; it only must be a literal, not a
    /// reference, a placeholder or an identifier.
    Password,
}

/// One secret rule.
#[derive(Debug)]
pub struct Rule {
    pub id: &'static str,
    pub description: &'static str,
    /// Lowercase literals; the rule's regex only runs near one of them. Empty:
    /// the regex has a rare case-sensitive literal of its own and scans the
    /// whole text.
    pub keywords: &'static [&'static str],
    /// The pattern. The named group `s` is the secret (the whole match when
    /// absent). `\b` means an ASCII word boundary.
    pub regex: &'static str,
    /// Minimum Shannon entropy (bits per byte) of the secret.
    pub entropy: Option<f32>,
    /// How far (in bytes) from a keyword the match may reach, beyond the
    /// keyword's own line. Multi-line secrets need it.
    pub reach: usize,
    pub check: Check,
    /// Substrings that, when present in the secret, mean it is not one.
    pub allow: &'static [&'static str],
    /// Texts in which the rule must find a secret.
    pub tp: &'static [&'static str],
    /// Texts in which the rule must find nothing.
    pub fp: &'static [&'static str],
}

/// Words that make an assignment's name credential-like. Shared by the
/// generic rule's regex (below) and its keywords.
pub const CREDENTIAL_WORDS: &[&str] = &[
    "key",
    "token",
    "secret",
    "auth",
    "credential",
    "creds",
    "bearer",
    "apikey",
    "api_key",
    "access",
    "private",
    "session",
    "cookie",
    "login",
    "cloudflare",
    "sourcegraph",
    "meraki",
    "heroku",
    "snyk",
    "sonar",
    "hubspot",
    "messagebird",
    "mailchimp",
    "sumo",
    "okta",
    "databricks",
    "facebook",
    "scalingo",
    "clickhouse",
    "maxmind",
    "twilio",
    "sendgrid",
    "datadog",
    "algolia",
    "mapbox",
];

/// The rule table. Order matters only for ties: when two rules find the same
/// span, the earlier one names it.
pub static RULES: &[Rule] = &[
    Rule {
        id: "private-key",
        description: "PEM, OpenSSH and PGP private key blocks",
        keywords: &["-----begin"],
        regex: r"(?P<s>-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\:,-]{16,}))",
        entropy: None,
        reach: 64 * 1024,
        check: Check::Format,
        allow: &[],
        tp: &[
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAFAKEFAKEFAKE\n-----END OPENSSH PRIVATE KEY-----",
            "key = \"-----BEGIN RSA PRIVATE KEY-----\\nMIIEFAKEkeyMATERIALfake0123456789abcdef\\n-----END RSA PRIVATE KEY-----\"",
        ],
        fp: &[
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
            "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
        ],
    },
    Rule {
        id: "aws-access-key-id",
        description: "AWS access key ids (AKIA, ASIA, ABIA, ACCA, A3T prefixes)",
        keywords: &["akia", "asia", "abia", "acca", "a3t"],
        regex: r"\b(?P<s>(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &["EXAMPLE"],
        tp: &["aws_access_key_id = AKIAQ3FAKE7KEYZ4WXYZ"],
        fp: &["key = AKIAXXXXXXXXXXXXXXXX", "TODAYINASIAASACKOFRICEFELLOVER"],
    },
    Rule {
        id: "aws-secret-access-key",
        description: "AWS secret access keys, in the context of an aws...secret name",
        keywords: &["aws"],
        regex: r#"(?i)aws[\w.-]{0,25}?(?:secret|sk|private)[\w.-]{0,25}[\s'"]{0,3}(?:=|:=|:|=>|,)[\s'"]{0,5}(?P<s>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        entropy: Some(3.5),
        reach: 0,
        check: Check::Format,
        allow: &["EXAMPLEKEY"],
        tp: &["aws_secret_access_key = Zq8FAKEsecretKEYvalue0123456789abcdEFG/+"],
        fp: &["aws_secret_access_key = os.environ[\"AWS_SECRET_ACCESS_KEY\"]"],
    },
    Rule {
        id: "aws-bedrock-api-key",
        description: "Amazon Bedrock API keys, long-lived (ABSK) and short-lived",
        keywords: &["absk", "bedrock-api-key-"],
        regex: r"(?P<s>\bABSK[A-Za-z0-9+/]{109,}={0,2}|bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/=%&?_-]*)",
        entropy: None,
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["token=bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29tFAKEfake"],
        fp: &["ABSK is an abbreviation"],
    },
    Rule {
        id: "github-pat",
        description: "GitHub classic personal access tokens (ghp_)",
        keywords: &["ghp_"],
        regex: r"\b(?P<s>ghp_[A-Za-z0-9]{36})\b",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["export GITHUB_TOKEN=ghp_FAKEfake0123456789abcdefABCDEFfake01"],
        fp: &["ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "ghp_short"],
    },
    Rule {
        id: "github-oauth",
        description: "GitHub OAuth access tokens (gho_)",
        keywords: &["gho_"],
        regex: r"\b(?P<s>gho_[A-Za-z0-9]{36})\b",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["oauth: gho_FAKEfake0123456789abcdefABCDEFfake02"],
        fp: &["gho_0000000000000000000000000000000000000"],
    },
    Rule {
        id: "github-app-token",
        description: "GitHub app user-to-server and server-to-server tokens (ghu_, ghs_)",
        keywords: &["ghu_", "ghs_"],
        regex: r"\b(?P<s>(?:ghu|ghs)_[A-Za-z0-9]{36})\b",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["ghs_FAKEfake0123456789abcdefABCDEFfake03"],
        fp: &["ghu_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"],
    },
    Rule {
        id: "github-refresh-token",
        description: "GitHub refresh tokens (ghr_)",
        keywords: &["ghr_"],
        regex: r"\b(?P<s>ghr_[A-Za-z0-9]{36,76})\b",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["ghr_FAKEfake0123456789abcdefABCDEFfake04"],
        fp: &["ghr_"],
    },
    Rule {
        id: "github-fine-grained-pat",
        description: "GitHub fine-grained personal access tokens (github_pat_)",
        keywords: &["github_pat_"],
        regex: r"\b(?P<s>github_pat_[A-Za-z0-9_]{82})\b",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["github_pat_11FAKEFAKE0fakefakefake_FAKEfake0123456789abcdefABCDEFfakeFAKEfake0123456789abcdef"],
        fp: &["the github_pat_ prefix"],
    },
    Rule {
        id: "gitlab-pat",
        description: "GitLab personal access tokens (glpat-)",
        keywords: &["glpat-"],
        regex: r"\b(?P<s>glpat-[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9]{2}[A-Za-z0-9]{7,})?)",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["GITLAB_TOKEN=glpat-FAKEfake0123abcdEFGH"],
        fp: &["glpat-xxxxxxxxxxxxxxxxxxxx"],
    },
    Rule {
        id: "gitlab-token",
        description: "Other GitLab tokens: deploy, pipeline trigger, runner, CI job, feed, OAuth, agent",
        keywords: &[
            "gldt-", "glptt-", "glrt-", "gr1348941", "glcbt-", "glimt-", "glsoat-", "glffct-",
            "gloas-", "glagent-", "glft-",
        ],
        regex: r"\b(?P<s>(?:gldt|glptt|glrt|glcbt|glimt|glsoat|glffct|gloas|glagent|glft)-[A-Za-z0-9_-]{20,}|GR1348941[A-Za-z0-9_-]{20,})",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["registration_token: glrt-FAKEfake0123abcdEFGHij"],
        fp: &["glrt-short"],
    },
    Rule {
        id: "slack-token",
        description: "Slack bot, user, workspace and legacy tokens (xoxb-, xoxp-, xoxa-, xoxs-, xoxo-, xoxr-)",
        keywords: &["xox"],
        regex: r"\b(?P<s>xox[abposr]-(?:[0-9]{1,14}-)+[A-Za-z0-9]{8,}(?:-[A-Za-z0-9]+)*)",
        entropy: Some(2.5),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &[
            "SLACK_BOT_TOKEN=xoxb-123456789012-1234567890123-Fk3q9ZtR0wXy7LmN2bVc8HdJ",
            // Letters only, and it splits into word-like parts: still a token.
            "xoxb-123456789012-1234567890123-qWeRtYuIoPaSdFgHjKlZxCvB",
        ],
        fp: &[
            "xoxb-12345-abcd234",
            "https://github.com/xoxa-nyc/xoxa-nyc.github.io",
            "\"token\": \"xoxp-123456789012-123456789012-123456789012-####################\"",
            "xoxe.xoxp-1-SlackAppConfigurationAccessTokenHere",
        ],
    },
    Rule {
        id: "slack-app-token",
        description: "Slack app-level tokens (xapp-)",
        keywords: &["xapp-"],
        regex: r"(?i)\b(?P<s>xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+)",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["xapp-1-AFAKE0001-1234567890123-0fake0fake0fake0fake0fake0fake0fake0fake0fake0fake"],
        fp: &["xapp-1-x"],
    },
    Rule {
        id: "slack-config-token",
        description: "Slack configuration access and refresh tokens (xoxe.xoxp-, xoxe-)",
        keywords: &["xoxe"],
        regex: r"(?i)\b(?P<s>xoxe(?:\.xox[bp])?-\d-[A-Z0-9]{40,})",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["xoxe.xoxp-1-FAKEfake0123456789FAKEfake0123456789FAKEfake0123456789"],
        fp: &["xoxe.xoxp-1-initial"],
    },
    Rule {
        id: "slack-webhook-url",
        description: "Slack incoming webhook and workflow URLs",
        keywords: &["hooks.slack.com"],
        regex: r"(?P<s>(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{30,})",
        entropy: None,
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["url: https://hooks.slack.com/services/TFAKE0001/BFAKE0002/FAKEfakeFAKEfake01234567"],
        fp: &["see hooks.slack.com for details"],
    },
    Rule {
        id: "stripe-key",
        description: "Stripe secret and restricted keys (sk_live_, rk_test_...)",
        keywords: &["sk_live", "sk_test", "sk_prod", "rk_live", "rk_test", "rk_prod"],
        regex: r"\b(?P<s>(?:sk|rk)_(?:test|live|prod)_[A-Za-z0-9]{10,99})\b",
        entropy: Some(2.5),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["stripe.api_key = \"sk_live_FAKEfake0123456789abcdEFGH\""],
        fp: &["sk_test_xxxxxxxxxxxxxxxxxxxxxxxx"],
    },
    Rule {
        id: "gcp-api-key",
        description: "Google API keys (AIza...)",
        keywords: &["aiza"],
        regex: r"\b(?P<s>AIza[A-Za-z0-9_-]{35})(?:[^A-Za-z0-9_-]|$)",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["const key = 'AIzaSyFAKEfake0123456789abcdefFAKEfake1';"],
        fp: &["AIzaSy"],
    },
    Rule {
        id: "openai-api-key",
        description: "OpenAI API keys (sk-proj-, sk-svcacct-, sk-admin-, legacy sk-...T3BlbkFJ)",
        keywords: &["sk-proj-", "sk-svcacct-", "sk-admin-", "t3blbkfj"],
        regex: r"\b(?P<s>sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}|sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,})",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["OPENAI_API_KEY=sk-proj-FAKEfake0123456789abcdEFGHijklMNOPqrst0123456789"],
        fp: &["sk-proj-"],
    },
    Rule {
        id: "anthropic-api-key",
        description: "Anthropic API and admin keys (sk-ant-api03-, sk-ant-admin01-...)",
        keywords: &["sk-ant-"],
        regex: r"\b(?P<s>sk-ant-(?:api03|admin01)-[A-Za-z0-9_-]{93}AA|sk-ant-(?:oat|sid|ort)\d{2}-[A-Za-z0-9_-]{80,})(?:[^A-Za-z0-9_-]|$)",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["ANTHROPIC_API_KEY=sk-ant-api03-FAKEfake0123456789abcdEFGHijklMNOPqrstFAKEfake0123456789abcdEFGHijklMNOPqrstFAKEfake012345678AA"],
        fp: &["sk-ant-api03-abc123xyz-456de-klMnopqrstuvwx-3456yza789bcde-1234fghijklmnopAA", "sk-ant-api03-FAKEfake0123456789abcdEFGHijklMNOPqrst0123456789FAKEfake0123456789abcdEFGHijklMNOPqrBB"],
    },
    Rule {
        id: "huggingface-token",
        description: "Hugging Face access tokens (hf_) and organisation tokens (api_org_)",
        keywords: &["hf_", "api_org_"],
        regex: r"\b(?P<s>(?:hf_|api_org_)[A-Za-z]{34})\b",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["huggingface-cli login --token hf_FAKEfakeFAKEfakeFAKEfakeFAKEfakeQZ"],
        fp: &["token hf_xxxxx", "api_org_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"],
    },
    Rule {
        id: "npm-token",
        description: "npm access tokens (npm_)",
        keywords: &["npm_"],
        regex: r"\b(?P<s>npm_[A-Za-z0-9]{36})\b",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["//registry.npmjs.org/:_authToken=npm_FAKEfake0123456789abcdefABCDEFfake05"],
        fp: &["npm_config_cache=/tmp/npm"],
    },
    Rule {
        id: "pypi-token",
        description: "PyPI upload tokens (pypi-AgEIcHlwaS5vcmc...)",
        keywords: &["pypi-ageichlwas5vcmc"],
        regex: r"(?P<s>pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,})",
        entropy: None,
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["password = pypi-AgEIcHlwaS5vcmcFAKEfake0123456789abcdEFGHijklMNOPqrst0123456789FAKE"],
        fp: &["pypi-AgEIcHlwaS5vcmc"],
    },
    Rule {
        id: "sendgrid-api-key",
        description: "SendGrid API keys (SG.xxx.yyy)",
        keywords: &["sg."],
        // The key's alphabet has `-`, after which `\b` cannot match: the
        // end is any character outside the alphabet instead.
        regex: r"\b(?P<s>SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})(?:[^A-Za-z0-9_-]|$)",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &[
            "SENDGRID_API_KEY=SG.FAKEfake0123456789abcd.FAKEfake0123456789abcdEFGHijklMNOPqrst01234",
            "key SG.0_aA0a-A-_A-0aA0AaAA-_.A0aAa_00AAaaa0-aa0aa-aa-aA_aa__0B_bBc_01dC- sent",
        ],
        fp: &["msg.send(data)"],
    },
    Rule {
        id: "twilio-key",
        description: "Twilio API key SIDs (SK...) and account SIDs (AC...), 32 lowercase hex",
        keywords: &[],
        regex: r"\b(?P<s>(?:SK|AC)[0-9a-f]{32})\b",
        entropy: Some(2.8),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["TWILIO_API_KEY=SK0fa1ce0fa1ce0fa1ce0fa1ce12345678"],
        fp: &["SKIP_TESTS=1", "AC00000000000000000000000000000000"],
    },
    Rule {
        id: "telegram-bot-token",
        description: "Telegram bot tokens (digits:AA...)",
        keywords: &[":aa", "telegram"],
        regex: r"\b(?P<s>[0-9]{8,10}:AA[A-Za-z0-9_-]{33}|[0-9]{5,16}:A[A-Za-z0-9_-]{34})(?:[^A-Za-z0-9_-]|$)",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &[
            "TELEGRAM_BOT_TOKEN=123456789:AAFAKEfake0123456789abcdEFGHijklMNO",
            "telegram_token = 29008173:A0-FAKEfake0123456789abcdEFGHijklMN",
        ],
        fp: &["12:AA is a time"],
    },
    Rule {
        id: "azure-storage-key",
        description: "Azure storage connection-string account keys and shared access keys",
        keywords: &["accountkey=", "sharedaccesskey=", "sharedaccesssignature="],
        regex: r"(?i)(?:AccountKey|SharedAccessKey|SharedAccessSignature)=(?P<s>[A-Za-z0-9+/%=&:.-]{20,})",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["DefaultEndpointsProtocol=https;AccountName=fakeacct;AccountKey=FAKEfake0123456789abcdEFGHijklMNOPqrst0123456789FAKEfake012345678==;EndpointSuffix=core.windows.net"],
        fp: &["AccountKey=<your-account-key>"],
    },
    Rule {
        id: "azure-ad-client-secret",
        description: "Azure AD (Entra) client secrets (xxx8Q~...)",
        keywords: &["q~"],
        regex: r#"(?:^|[\\'"`\s>=:(,)])(?P<s>[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34})(?:$|[\\'"`\s<),])"#,
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["client_secret=aB38Q~FAKEfake0123456789abcdEFGHijklMNO"],
        fp: &["Q~ alone"],
    },
    Rule {
        id: "jwt",
        description: "JSON Web Tokens (eyJ...eyJ...)",
        keywords: &["eyj"],
        regex: r"\b(?P<s>ey[A-Za-z0-9_-]{12,}\.ey[A-Za-z0-9_/\\-]{12,}\.?[A-Za-z0-9_/\\+-]*={0,2})",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJmYWtlLXVzZXIiLCJmYWtlIjp0cnVlfQ.FAKEfakeSIGNATUREfake0123"],
        fp: &["eyJ alone", "eyJhbGciOiJub25lIn0"],
    },
    Rule {
        id: "jwt-base64",
        description: "Base64-encoded JSON Web Tokens (ZXlK...)",
        keywords: &["zxlk"],
        regex: r"\b(?P<s>ZXlK[A-Za-z0-9+/]{40,}={0,2})",
        entropy: Some(3.5),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["ZXlKaGJHY2lPaUpJVXpJMU5pSjkuZXlKemRXSWlPaUptWVd0bEluMC5GQUtFZmFrZQ=="],
        fp: &["ZXlK"],
    },
    Rule {
        id: "one-password-token",
        description: "1Password service-account tokens (ops_eyJ...) and secret keys (A3-...)",
        keywords: &["ops_eyj", "a3-"],
        regex: r"\b(?P<s>ops_eyJ[A-Za-z0-9+/]{100,}={0,3}|A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5})",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["A3-FAKE01-FAKE0123456-FAKE2-FAKE3-FAKE4"],
        fp: &["ops_eyJxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"],
    },
    Rule {
        id: "age-secret-key",
        description: "age encryption secret keys",
        keywords: &["age-secret-key-1"],
        regex: r"(?P<s>AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})",
        entropy: None,
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"],
        fp: &["AGE-SECRET-KEY-1"],
    },
    Rule {
        id: "sentry-token",
        description: "Sentry organisation and user auth tokens (sntrys_, sntryu_)",
        keywords: &["sntrys_", "sntryu_"],
        regex: r"\b(?P<s>sntrys_eyJ[A-Za-z0-9+/=_]{40,}|sntryu_[a-f0-9]{64})",
        entropy: None,
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["SENTRY_AUTH_TOKEN=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"],
        fp: &["sntrys_"],
    },
    Rule {
        id: "cloudflare-origin-ca-key",
        description: "Cloudflare origin CA keys (v1.0-...)",
        keywords: &["v1.0-"],
        regex: r"\b(?P<s>v1\.0-[a-f0-9]{24}-[a-f0-9]{146})",
        entropy: None,
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["v1.0-0fa1ce0fa1ce0fa1ce0fa1ce-0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce12"],
        fp: &["version v1.0-beta"],
    },
    Rule {
        id: "prefixed-token",
        description: "Tokens with a distinctive vendor prefix: Atlassian (ATATT), Databricks (dapi), Sourcegraph (sgp_), Notion (ntn_), Perplexity (pplx-), Heroku (HRKU-), Fly.io (fo1_, fm1r_, fm2_), HashiCorp Vault (hvs., hvb.) and Terraform Cloud (.atlasv1.), Grafana (glc_, glsa_), OpenShift (sha256~), Shopify (shpat_...), DigitalOcean (dop_v1_), Doppler (dp.pt.), Linear (lin_api_), Postman (PMAK-), Pulumi (pul-), Infracost (ico-), Scalingo (tk-us-), 42 intra (s-s4t2), Square (sq0atp-, sq0csp-, EAAA), Flutterwave (FLWSECK-)",
        keywords: &[
            "atatt", "dapi", "sgp_", "ntn_", "pplx-", "hrku-", "fo1_", "fm1r_", "fm2_", "hvs.", "hvb.",
            ".atlasv1.", "glc_", "glsa_", "sha256~", "shpat_", "shpss_", "shpca_", "shppa_",
            "dop_v1_", "doo_v1_", "dor_v1_", "dp.pt.", "dp.st.", "lin_api_", "pmak-", "pul-", "ico-",
            "tk-us-", "s-s4t2", "sq0atp-", "sq0csp-", "eaaa", "flwseck",
        ],
        regex: r"\b(?P<s>ATATT3[A-Za-z0-9_=-]{186}|ATATT[A-Za-z0-9_=-]{60,}|dapi[a-f0-9]{32}(?:-\d)?|sgp_(?:[a-fA-F0-9]{16}|local)_[a-fA-F0-9]{40}|sgp_[a-fA-F0-9]{40}|ntn_[0-9]{11}[A-Za-z0-9]{35}|pplx-[A-Za-z0-9]{48}|HRKU-AA[A-Za-z0-9_-]{58}|fo1_[\w-]{43}|fm[12][ar]?_[A-Za-z0-9+/]{100,}={0,3}|hv[sb]\.[A-Za-z0-9_-]{24,}|[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}|sq0(?:atp|csp)-[0-9A-Za-z_-]{22,43}|EAAA[A-Za-z0-9_-]{60}|glc_[A-Za-z0-9+/]{32,}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|sha256~[\w-]{43}|shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}|do[opr]_v1_[a-f0-9]{64}|dp\.(?:pt|st)\.[a-zA-Z0-9]{43}|lin_api_[a-zA-Z0-9]{40}|PMAK-[a-f0-9]{24}-[a-f0-9]{34}|pul-[a-f0-9]{40}|ico-[a-zA-Z0-9]{32}|tk-us-[\w-]{48}|FLWSECK(?:_TEST)?-[a-h0-9]{12,32}(?:-X)?|s-s4t2(?:ud|af)-[a-f0-9]{64})",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &[
            "DATABRICKS_TOKEN=dapi0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce12",
            "VAULT_TOKEN=hvs.FAKEfake0123456789abcdEFGH",
            "notion: ntn_12345678901FAKEfake0123456789abcdEFGHijklMNOPq",
            "FLW_SECRET=FLWSECK_TEST-0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce12-X",
        ],
        fp: &["dapi is not a word", "hvs.short", "assets/video_box.ico-0fa1ce0fa1ce0fa1ce0fa1ce0fa1ce12.png", "ntn_123456789012345678901234567890123456789012345678901234567890"],
    },
    Rule {
        id: "slack-or-generic-webhook",
        description: "Discord and Microsoft Teams webhook URLs",
        keywords: &["discord.com/api/webhooks", "discordapp.com/api/webhooks", "webhook.office.com"],
        regex: r"(?P<s>https://(?:(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]{20,}|[a-z0-9-]+\.webhook\.office\.com/webhookb2/[A-Za-z0-9@/-]{20,}))",
        entropy: None,
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["https://discord.com/api/webhooks/123456789012345678/FAKEfake0123456789abcdEFGHijkl"],
        fp: &["https://discord.com/api/webhooks/ docs"],
    },
    Rule {
        id: "database-connection-url",
        description: "Passwords inside database connection URLs (postgres, mysql, mongodb, redis, amqp, mssql, jdbc)",
        keywords: &["postgres", "mysql", "mongodb", "redis", "amqp", "mssql", "sqlserver", "mariadb", "jdbc", "clickhouse://", "cockroach"],
        regex: r#"(?i)\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|cockroachdb|clickhouse)(?:\+[a-z0-9]+)?://[^\s:/@'"<>]{0,64}:(?P<s>[^\s/@'"<>]{1,})@"#,
        entropy: None,
        reach: 0,
        check: Check::Password,
        allow: &[],
        tp: &["DATABASE_URL=postgres://app:Fak3Passw0rd@db.internal:5432/app"],
        fp: &["DATABASE_URL=postgres://app:${DB_PASSWORD}@db:5432/app", "postgres://localhost/app"],
    },
    Rule {
        id: "url-credentials",
        description: "Passwords inside any URL's user-info (scheme://user:password@host)",
        keywords: &["://"],
        regex: r#"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s:/@'"<>]{0,64}:(?P<s>[^\s/@'"<>]{1,})@[A-Za-z0-9.\[-]"#,
        entropy: None,
        reach: 0,
        check: Check::Password,
        allow: &[],
        tp: &["git clone https://dev:FakeS3cretPw@git.example.org/repo.git"],
        fp: &["https://user:<password>@host", "https://example.org/path@v1", "http://localhost:8080/"],
    },
    Rule {
        id: "database-connection-string",
        description: "Passwords in ADO.NET / ODBC style connection strings (Server=...;Password=...)",
        keywords: &["server=", "data source=", "host=", "uid="],
        regex: r#"(?i)(?:server|data source|host|uid)\s*=[^;\n]+;[^\n]*?\b(?:password|pwd)\s*=\s*(?P<s>[^;'"\s]{1,})"#,
        entropy: None,
        reach: 0,
        check: Check::Password,
        allow: &[],
        tp: &["Server=db1;Database=app;User Id=sa;Password=Fak3Passw0rd!;"],
        fp: &["Server=db1;Database=app;Password=${DB_PASSWORD};"],
    },
    Rule {
        id: "nuget-config-password",
        description: "Clear-text passwords in NuGet.config",
        keywords: &["<add key"],
        regex: r#"(?i)<add\s+key=["'](?:ClearTextPassword|Password)["']\s+value=["'](?P<s>[^"']{1,})["']"#,
        entropy: None,
        reach: 0,
        check: Check::Password,
        allow: &[],
        tp: &["<add key=\"ClearTextPassword\" value=\"FakeNuget-Pw1\" />"],
        fp: &["<add key=\"ClearTextPassword\" value=\"%NUGET_PASSWORD%\" />"],
    },
    Rule {
        id: "curl-auth",
        description: "Credentials on curl command lines: -u user:password and Authorization headers",
        keywords: &["curl"],
        regex: r#"(?i)\bcurl\b[\s\S]*?(?:\s(?:-u|--user)\s*(?:['"]?[^\s:'"]{0,64}['"]?:['"]?(?P<s>[^\s'"]{3,})|['"]?(?P<k>[^\s:'"]{8,}):['"\s])|(?:-H|--header)\s*['"]\s*(?:Authorization|[A-Za-z-]*(?:Key|Token|Secret|Auth[A-Za-z]*))\s*:\s*(?:(?:Basic|Bearer|Token)\s+)?(?P<h>[^\s'"]{6,}))"#,
        entropy: None,
        reach: 600,
        check: Check::Password,
        allow: &[],
        tp: &[
            "curl -u admin:Fak3Passw0rd https://api.example.org",
            "curl https://api.example.org \\\n  --user kevin:'Fak3Passw0rd' -X PATCH",
            "curl -u \"sk_fake_0123456789abcdef:\" https://api.example.org",
            "curl -H \"X-Api-Token: 0fa1ce0fa1ce12\" https://api.example.org",
            "curl -H 'Authorization: Bearer FAKEfake0123456789abcd' https://api.example.org",
        ],
        fp: &[
            "curl -u \"$USER:$PASS\" https://x",
            "curl -H \"Authorization: Bearer <Openverse API token>\" https://x",
            "curl -u <user:password> https://x",
            "curl --user \"xxx:yyy\"",
        ],
    },
    Rule {
        id: "authorization-header",
        description: "Authorization: Basic/Bearer/Token header values anywhere",
        keywords: &["authorization", "bearer "],
        regex: r#"(?i)(?:\bauthorization["']?\s*[:=,]\s*["']?(?:(?:basic|bearer|token|digest)\s+)?|\bbearer\s+)(?P<s>[A-Za-z0-9._~+/=:-]{12,})"#,
        entropy: Some(3.0),
        reach: 0,
        check: Check::Assigned,
        allow: &[],
        tp: &["Authorization: Basic RkFLRTpmYWtlLXBhc3N3b3Jk"],
        fp: &["Authorization: Bearer ${TOKEN}", "authorization: required"],
    },
    Rule {
        id: "kubernetes-secret-data",
        description: "Values under data: in a Kubernetes Secret manifest",
        keywords: &["kind: secret", "kind: \"secret\"", "kind: 'secret'", ".dockercfg", ".dockerconfigjson"],
        regex: r#"(?m)^[ \t]*(?:[\w.-]{1,60}|"[\w.-]{1,60}"):[ \t]*(?:[|>][-+]?[ \t]*\n[ \t]+)?["']?(?P<s>[A-Za-z0-9+/]{6,}={0,2})["']?[ \t]*$"#,
        entropy: Some(2.0),
        reach: 2048,
        check: Check::Format,
        allow: &[],
        tp: &[
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: RkFLRXBhc3N3b3Jk\n",
            "data:\n  .dockercfg: |\n    eyJGQUtFIjoiZmFrZS1yZWdpc3RyeS1hdXRoIn0=\n",
        ],
        fp: &[
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\n---\nkind: ReplicationController\n",
            "kind: SecretStore\nspec:\n  data:\n    key: secret/mysecret\n    property: MySecretManagerKey\n",
        ],
    },
    Rule {
        id: "sidekiq-credentials",
        description: "Sidekiq Enterprise/Pro gem credentials (contribsys)",
        keywords: &["contribsys"],
        regex: r"(?i)(?:BUNDLE_(?:ENTERPRISE|GEMS)__CONTRIBSYS__COM[A-Za-z0-9_]*[\s'\x22]{0,3}(?:=|:)[\s'\x22]{0,3}|https?://)(?P<s>[a-f0-9]{8}:[a-f0-9]{8})",
        entropy: None,
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &[
            "BUNDLE_ENTERPRISE__CONTRIBSYS__COM=0fa1ce12:0ddba11a",
            "BUNDLE_GEMS__CONTRIBSYS__COM: \"0fa1ce12:0ddba11a\"",
        ],
        fp: &["gems.contribsys.com"],
    },
    Rule {
        id: "facebook-access-token",
        description: "Facebook app access tokens (appid|secret) and page tokens (EAA...)",
        keywords: &["facebook", "eaa"],
        // The app token's alphabet has `-`, after which `\b` cannot match:
        // its end is any character outside the alphabet instead (the `k`
        // group is the page token).
        regex: r"(?:(?P<s>\b\d{15,16}(?:\||%7C)[A-Za-z0-9_-]{27})(?:[^A-Za-z0-9_-]|$)|(?P<k>\bEAA[A-Za-z0-9]{80,}))",
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &[
            "facebook 1234567890123456|FAKEfake0123456789abcdEFGH_",
            "facebook 1234567890123456|FAKEfake0123456789abcdEFGH-",
        ],
        fp: &["EAAAAAAA"],
    },
    Rule {
        id: "sumologic-access-id",
        description: "Sumo Logic access ids (su + 12), named as such",
        keywords: &["sumo"],
        regex: r#"(?i)sumo[\w.-]{0,20}access_?id["'`]?[ \t]{0,16}(?:=|:|:=|=>)[ \t]{0,5}["'`]?(?P<s>su[A-Za-z0-9]{12})\b"#,
        entropy: Some(3.0),
        reach: 0,
        check: Check::Format,
        allow: &[],
        tp: &["SUMO_ACCESS_ID = \"suFAKE0fake012\""],
        fp: &["sumObj = suFAKE0fake012"],
    },
    Rule {
        id: "password-assignment",
        description: "Passwords assigned a literal value (password=, passwd:, pwd =>...)",
        keywords: &["pass", "pwd", "pswd"],
        regex: r#"(?i)(?P<name>[\w.-]{0,40}(?:passw(?:or)?d|passwd|pass|pwd|pswd|passphrase)[\w.-]{0,20})["'`]?[ \t]{0,16}(?:=|:=|::=|:::=|:|=>|\?=|\.=|\|\|=|,)[ \t]{0,3}(?:(?P<q>["'`])(?P<s>[^"'`\r\n]{1,})["'`]|(?P<u>[^\s"'`,;<>(){}\[\]]{2,})(?:[\s,;)\]}<'"`]|\\[nrt]|$))"#,
        entropy: None,
        reach: 0,
        check: Check::Password,
        allow: &[],
        tp: &[
            "password = \"hunter2horse\"",
            "DB_PASSWORD=Fak3Passw0rd",
            "  db_pass: s3cr3t-fake",
            "password       = \"rootpw-fake\"",
        ],
        fp: &[
            "password = os.environ[\"DB_PASSWORD\"]",
            "password: ${DB_PASSWORD}",
            "password = getpass()",
            "password: String,",
            "PASSWORD=changeme",
            "password = \"\"",
            "pass_through = true",
        ],
    },
    Rule {
        id: "generic-secret",
        description: "Secrets, tokens and API keys assigned a literal, random-looking value (api_key=, token:, secret =>...)",
        keywords: CREDENTIAL_WORDS,
        regex: r#"(?i)(?P<lt><)?(?P<name>[\w.-]{0,40}(?:key|token|secret|auth|credential|creds|bearer|apikey|api_key|access|private|session|cookie|login|cloudflare|sourcegraph|meraki|heroku|snyk|sonar|hubspot|messagebird|mailchimp|sumo|okta|databricks|facebook|scalingo|clickhouse|maxmind|twilio|sendgrid|datadog|algolia|mapbox)[\w.-]{0,20})["'`]?(?:[ \t]+string|[ \t]*:[ \t]*&?(?:'static[ \t]+)?(?:str|string|String))?[ \t]{0,16}(?P<sep>=|:=|::=|:::=|:|=>|\?=|\.=|\|\|=|,|>)\s{0,5}(?:(?P<q>["'`])(?P<s>[^"'`\s]{10,})["'`]|(?P<u>[A-Za-z0-9_+/=~.!@#$%^*|-]{10,})(?:[\s,;)\]}<'"`]|\\[nrt]|$))"#,
        entropy: Some(3.0),
        reach: 16,
        check: Check::Assigned,
        allow: &[],
        tp: &[
            "api_key = \"Zk3FAKEq9fakeR2x7Lp0\"",
            "var apiToken string = \"Zk3FAKEq9fakeR2x7Lp0\"",
            "const API_TOKEN: &str = \"Zk3FAKEq9fakeR2x7Lp0\";",
            "yandexToken = \"t1.9euFAKE==.FAKEfake0123456789abcdEFGH_ijkl-MNOP\"",
            "discord_token = \"25130226450292771022773629319832\"",
            "\"access_token\": \"FAKEfake0123456789abcdEFGH\"",
            "SNYK_TOKEN := \"0fa1ce12-fa1c-4e0f-a1ce-0fa1ce0fa1ce\"",
            "<ClickHouseToken>\n  FAKEfake0123456789abcdEFGHijkl\n</ClickHouseToken>",
        ],
        fp: &[
            "api_key = os.getenv(\"API_KEY\")",
            "token: ${{ secrets.GITHUB_TOKEN }}",
            "secret_key = \"<your-secret-key>\"",
            "key_length = XSalsa20.key_length",
            "credentialsId: '29f63271-dc2f-4734-8221-5b31b5169bac'",
            "cache_key = \"3f786850e387550fdab836ed7e6dc881de23001b\"",
            "\"integrity\": \"sha512-FAKEfakeFAKEfake0123456789abcdEFGHijklMNOPqrstUVWXyz==\"",
            "token_type = \"bearer\"",
            "keyboard_layout = \"us-international\"",
            "api_version = \"2024-06-01.preview\"",
            "SECRET_KEY = 'xxxxxxxxxxxxxxxxxxxx'",
            "<entry key=\"jetbrains.mps.v8_elimination\" value=\"executed\" />",
            "if (pIdxKey->default_rc==0) {",
            "rookTable = Zk3FAKEq9fakeR2x7Lp0",
            "import { chain_Anvil1_Key, chain_Anvil2_Key } from './consts';",
            "const alphabet_key = \"abcdefghijklmnopqrstuvwxyz0123456789\"",
        ],
    },
];

/// A fingerprint of the rule table (SHA-256, hex) for export manifests: it
/// changes whenever a rule's id, keywords, regex, entropy floor, reach,
/// check or allowlist changes, so a dataset says which rules redacted it.
/// Identity terms are deliberately not part of it.
pub fn ruleset_fingerprint() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"candor-redact-rules-v1\0");
    for r in RULES {
        h.update(r.id.as_bytes());
        h.update([0]);
        for k in r.keywords {
            h.update(k.as_bytes());
            h.update([1]);
        }
        h.update(r.regex.as_bytes());
        h.update([0]);
        h.update(format!("{:?}/{}/{:?}", r.entropy, r.reach, r.check).as_bytes());
        for a in r.allow {
            h.update(a.as_bytes());
            h.update([2]);
        }
        h.update([3]);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_hex() {
        let f = ruleset_fingerprint();
        assert_eq!(f.len(), 64);
        assert!(f.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(f, ruleset_fingerprint());
    }
}
