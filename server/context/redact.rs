//! Secret redaction: the last step before source text is put into an LLM prompt.
//!
//! This module owns one decision, "does this span look like a credential?", and the rewrite
//! that replaces every such span with `[redacted:<kind>]`. [`redact`] finds private-key blocks,
//! provider tokens with a recognisable shape (AWS, GitHub, GitLab, Slack, Stripe, Google,
//! OpenAI, Anthropic, npm, PyPI, SendGrid, Twilio, Discord), JWTs, credentials in URLs and
//! `Authorization` headers, Azure connection-string keys, and literal values assigned to names
//! such as `password`, `client_secret` or `API_KEY` in code, `.env`, JSON, YAML, INI and shell.
//! It reports the byte range of every replacement in the original text so callers can map
//! offsets. [`is_secret_file`] names the files whose contents are secret wholesale (`.env`,
//! `*.pem`, `id_rsa`, `.aws/credentials`, …) so callers can keep them out of a prompt entirely.
//!
//! It never does I/O: no file, environment, network or log access, and it never stores or
//! prints what it removed; `is_secret_file` looks at the path string only, never at the disk.
//! Detection is by pattern, so it is a safety net rather than a guarantee, and it leans towards
//! leaving ordinary code intact: hashes, UUIDs, base64 fixtures, type annotations, struct fields
//! and variable references such as `password = config.password` are never touched.

use std::cmp::Reverse;
use std::path::Path;
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// One secret found and replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redaction {
    /// Short kebab-case name of what was found, e.g. `github-token` or `password`.
    pub kind: &'static str,
    /// Start of the replaced span, as a byte offset in the original text.
    pub start: usize,
    /// End (exclusive) of the replaced span, as a byte offset in the original text.
    pub end: usize,
}

/// Returns the text with every secret-looking span replaced by `[redacted:<kind>]`, and what was
/// replaced (in order, non-overlapping).
///
/// Every rule runs once over the whole text. Where matches overlap, the one that starts first
/// wins, then the longest, then the rule listed first in [`RULES`] (provider-specific rules come
/// before the generic `name = value` rule, so `GITHUB_TOKEN=ghp_…` reports `github-token`).
/// The result depends on the text alone, so it is deterministic.
pub fn redact(text: &str) -> (String, Vec<Redaction>) {
    let mut candidates = Vec::new();
    for (order, rule) in RULES.iter().enumerate() {
        rule.find(text, order, &mut candidates);
    }
    candidates.sort_unstable_by_key(|c| (c.start, Reverse(c.end), c.order));

    // Keep a candidate only if it starts after everything kept so far. Regex spans always lie on
    // character boundaries; the check makes the slicing below safe by construction all the same.
    let mut redactions: Vec<Redaction> = Vec::new();
    let mut covered = 0;
    for c in candidates {
        if c.start >= covered
            && c.end > c.start
            && text.is_char_boundary(c.start)
            && text.is_char_boundary(c.end)
        {
            covered = c.end;
            redactions.push(Redaction {
                kind: c.kind,
                start: c.start,
                end: c.end,
            });
        }
    }

    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for r in &redactions {
        out.push_str(&text[copied..r.start]);
        out.push_str(MARKER);
        out.push_str(r.kind);
        out.push(']');
        copied = r.end;
    }
    out.push_str(&text[copied..]);
    (out, redactions)
}

/// Whether a file path is one whose values are secrets wholesale (`.env`, `.env.local`,
/// `.env.production`, `*.pem`, `*.key`, `id_rsa`, `id_ed25519`, `.npmrc`, `.pypirc`,
/// `credentials` under `.aws/`…): callers then keep such files out entirely.
///
/// Only the path string is inspected. Templates meant to be committed (`.env.example`,
/// `.env.sample`, …) and public keys (`id_rsa.pub`) are not secret files.
pub fn is_secret_file(path: &Path) -> bool {
    let Some(name) = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
    else {
        return false;
    };
    if name.ends_with(".pub") {
        return false;
    }
    if is_env_file(&name)
        || SECRET_FILE_NAMES.contains(&name.as_str())
        || SSH_KEY_NAMES.contains(&name.as_str())
        || name.ends_with(".tfstate.backup")
    {
        return true;
    }
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if extension.is_some_and(|e| SECRET_EXTENSIONS.contains(&e.as_str())) {
        return true;
    }
    let parent = path
        .parent()
        .and_then(Path::file_name)
        .map(|p| p.to_string_lossy().to_ascii_lowercase());
    parent.is_some_and(|dir| {
        SCOPED_SECRET_FILES
            .iter()
            .any(|&(d, f)| d == dir.as_str() && f == name.as_str())
    })
}

// ---------------------------------------------------------------------------------------------
// Secret files
// ---------------------------------------------------------------------------------------------

/// File names that hold credentials wherever they are: registry and login tokens, password
/// files, and direnv's `.envrc` (which usually exports them).
const SECRET_FILE_NAMES: &[&str] = &[
    ".npmrc",
    ".pypirc",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".git-credentials",
    ".htpasswd",
    ".dockercfg",
    ".envrc",
];

/// OpenSSH's default private-key file names (their `.pub` halves are public).
const SSH_KEY_NAMES: &[&str] = &[
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "id_ecdsa_sk",
    "id_ed25519_sk",
    "id_xmss",
];

/// Extensions of key stores and private keys, plus Terraform state, which stores every
/// resource's secrets in plain text.
const SECRET_EXTENSIONS: &[&str] = &[
    "pem", "key", "p12", "pfx", "jks", "keystore", "ppk", "tfstate",
];

/// Files that are secret only inside a given tool's directory: `(directory, file name)`.
const SCOPED_SECRET_FILES: &[(&str, &str)] = &[
    (".aws", "credentials"),
    (".kube", "config"),
    (".docker", "config.json"),
];

/// Last name components that mark an env file as a committed template, not a secret store.
const ENV_TEMPLATE_SUFFIXES: &[&str] = &[
    "example", "sample", "template", "dist", "defaults", "schema",
];

/// `.env`, `.env.<anything>` and `<anything>.env`, except templates such as `.env.example`.
fn is_env_file(name: &str) -> bool {
    let env_like = name == ".env" || name.starts_with(".env.") || name.ends_with(".env");
    let template = name
        .rsplit('.')
        .next()
        .is_some_and(|last| ENV_TEMPLATE_SUFFIXES.contains(&last));
    env_like && !template
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

/// A match that may become a redaction.
struct Candidate {
    start: usize,
    end: usize,
    kind: &'static str,
    /// Index of the rule in [`RULES`]: the tie-breaker between equal spans.
    order: usize,
}

/// One pattern family: a regex compiled once, and how a match becomes a secret span.
struct Rule {
    /// What `Whole` and `Group` matches report; `Assignment` names its own kind.
    kind: &'static str,
    regex: Regex,
    extract: Extract,
}

/// How a rule turns a regex match into a secret span.
enum Extract {
    /// The whole match is the secret, if the check accepts it.
    Whole(fn(&str) -> bool),
    /// Capture group 1 is the secret (the rest is context such as `Bearer ` or `AccountKey=`),
    /// if the check accepts it.
    Group(fn(&str) -> bool),
    /// The generic `name = value` grammar: [`assignment`] judges the value and names the kind.
    Assignment,
}

impl Rule {
    fn new(kind: &'static str, pattern: &str, extract: Extract) -> Self {
        let regex = Regex::new(pattern).unwrap_or_else(|err| {
            panic!("built-in redaction pattern `{kind}` must compile: {err}")
        });
        Rule {
            kind,
            regex,
            extract,
        }
    }

    /// Pushes this rule's candidates in `text`.
    fn find(&self, text: &str, order: usize, out: &mut Vec<Candidate>) {
        let mut push = |start, end, kind| {
            out.push(Candidate {
                start,
                end,
                kind,
                order,
            })
        };
        match self.extract {
            Extract::Whole(accept) => {
                for m in self.regex.find_iter(text) {
                    if accept(m.as_str()) {
                        push(m.start(), m.end(), self.kind);
                    }
                }
            }
            Extract::Group(accept) => {
                for caps in self.regex.captures_iter(text) {
                    if let Some(m) = caps.get(1).filter(|m| accept(m.as_str())) {
                        push(m.start(), m.end(), self.kind);
                    }
                }
            }
            Extract::Assignment => {
                // A rejected match (`password: String = …` read the wrong way, a placeholder)
                // must not hide a name inside its span, so scanning resumes after its name.
                let mut at = 0;
                while let Some(caps) = self.regex.captures_at(text, at) {
                    let Some(whole) = caps.get(0) else { break };
                    at = match assignment(text, &caps) {
                        Some((start, end, kind)) => {
                            push(start, end, kind);
                            whole.end()
                        }
                        None => caps.name("key").map_or(whole.end(), |key| key.end()),
                    };
                }
            }
        }
    }
}

/// Kinds that only the generic assignment rule reports (the others are the rules' own kinds).
#[cfg(test)]
const ASSIGNMENT_KINDS: &[&str] = &[
    "password",
    "token",
    "api-key",
    "secret",
    "aws-secret-key",
    "twilio-auth-token",
    "heroku-api-key",
];

/// Every detector, specific before generic (the order breaks ties between equal spans).
///
/// Patterns use `(?-u:\b)`, an ASCII word boundary: the Unicode one makes the regex engine
/// fall back to a slow path on any non-ASCII text, and every token here is ASCII anyway.
static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    use Extract::{Assignment, Group, Whole};
    vec![
        // PEM private keys (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP, PKCS#8), BEGIN to END.
        Rule::new("private-key", PRIVATE_KEY_BLOCK, Whole(always)),
        // AWS access key ids: AKIA (long-term), ASIA (STS), and the rarer prefixes.
        Rule::new(
            "aws-access-key-id",
            r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?-u:\b)",
            Whole(always),
        ),
        // GitHub classic tokens (ghp_, gho_, ghu_, ghs_, ghr_) and fine-grained tokens.
        Rule::new(
            "github-token",
            r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})(?-u:\b)",
            Whole(always),
        ),
        Rule::new(
            "gitlab-token",
            r"(?-u:\b)gl(?:pat|dt|rt|ptt)-[A-Za-z0-9_\-]{20,}",
            Whole(always),
        ),
        Rule::new(
            "slack-token",
            r"(?-u:\b)xox[baprse]-[A-Za-z0-9\-]{10,}",
            Whole(always),
        ),
        Rule::new(
            "slack-webhook",
            r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/\-]{8,}",
            Whole(always),
        ),
        Rule::new(
            "discord-webhook",
            r"https://(?:(?:canary|ptb)\.)?discord(?:app)?\.com/api/webhooks/[0-9]{5,}/[A-Za-z0-9_\-]{20,}",
            Whole(always),
        ),
        // Stripe secret and restricted keys, live and test (publishable pk_ keys are public).
        Rule::new(
            "stripe-key",
            r"(?-u:\b)(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}(?-u:\b)",
            Whole(always),
        ),
        Rule::new(
            "google-api-key",
            r"(?-u:\b)AIza[A-Za-z0-9_\-]{35,}",
            Whole(always),
        ),
        // Anthropic before OpenAI: `sk-ant-…` matches both, and equal spans go to the first rule.
        Rule::new(
            "anthropic-key",
            r"(?-u:\b)sk-ant-[A-Za-z0-9_\-]{20,}",
            Whole(always),
        ),
        Rule::new(
            "openai-key",
            r"(?-u:\b)sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
            Whole(has_letter_and_digit),
        ),
        Rule::new(
            "npm-token",
            r"(?-u:\b)npm_[A-Za-z0-9]{36,}(?-u:\b)",
            Whole(always),
        ),
        Rule::new(
            "pypi-token",
            r"(?-u:\b)pypi-[A-Za-z0-9_\-]{50,}",
            Whole(always),
        ),
        Rule::new(
            "sendgrid-key",
            r"(?-u:\b)SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}",
            Whole(always),
        ),
        // Twilio API key SIDs and account SIDs; auth tokens are found by the assignment rule.
        Rule::new(
            "twilio-api-key",
            r"(?-u:\b)SK[0-9a-f]{32}(?-u:\b)",
            Whole(always),
        ),
        Rule::new(
            "twilio-account-sid",
            r"(?-u:\b)AC[0-9a-f]{32}(?-u:\b)",
            Whole(always),
        ),
        // JWTs: base64url `{"…` header and payload, then a signature. Before `bearer-token`, so a
        // JWT sent as a bearer token reports as `jwt`.
        Rule::new(
            "jwt",
            r"(?-u:\b)eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
            Whole(always),
        ),
        // Discord bot tokens: base64 user id, timestamp, HMAC.
        Rule::new(
            "discord-bot-token",
            r"(?-u:\b)[MNO][A-Za-z0-9_\-]{23,27}\.[A-Za-z0-9_\-]{6,7}\.[A-Za-z0-9_\-]{27,40}",
            Whole(has_letter_and_digit),
        ),
        // `Authorization: Bearer <token>`, bare `Bearer <token>`, and GitHub's
        // `Authorization: token <token>`; the scheme word is context.
        Rule::new(
            "bearer-token",
            r#"(?i)(?:(?-u:\b)bearer|authorization["']?[\x20\t]*[:=][\x20\t]*["']?token)[\x20\t]+([A-Za-z0-9\-._~+/]{16,}=*)"#,
            Group(has_letter_and_digit),
        ),
        // `Authorization: Basic <base64 user:pass>`; without the header name "basic" is prose.
        Rule::new(
            "basic-auth",
            r#"(?i)(?-u:\b)authorization["']?[\x20\t]*[:=][\x20\t]*["']?basic[\x20\t]+([A-Za-z0-9+/]{8,}={0,2})"#,
            Group(always),
        ),
        // scheme://user:password@host: only the password goes.
        Rule::new(
            "url-password",
            r#"(?-u:\b)[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@"'<>`]*:([^\s/?#@"'<>`]+)@"#,
            Group(is_literal_password),
        ),
        Rule::new(
            "azure-storage-key",
            r"(?i)(?-u:\b)AccountKey=([A-Za-z0-9+/]{20,}={0,2})",
            Group(always),
        ),
        // Literal values assigned to secret-sounding names, in any common syntax. Last, so every
        // specific rule above wins a tie on the same value.
        Rule::new("secret", ASSIGNMENT, Assignment),
        // The same judgement for XML elements: Maven's `<password>…</password>`, .NET configs.
        Rule::new("secret", MARKUP_ELEMENT, Assignment),
    ]
});

/// A PEM private-key block. A complete block runs from BEGIN to the first END; its body may
/// hold base64 lines, headers such as `Proc-Type: 4,ENCRYPTED`, indentation, and the quotes,
/// `+` and `\n` escapes of a key written as a string literal. A block cut short (at a chunk
/// boundary, say) is still redacted from its header through the base64 that follows, provided
/// there is some: a lone header string in a key-parsing program is left alone.
const PRIVATE_KEY_BLOCK: &str = r#"(?x)
    -----BEGIN[\x20A-Z0-9]*PRIVATE\x20KEY(?:\x20BLOCK)?-----
    (?:
        [A-Za-z0-9+/=\s\\:,.\-"']*?
        -----END[\x20A-Z0-9]*PRIVATE\x20KEY(?:\x20BLOCK)?-----
      |
        (?:\s|\\[rn])*
        (?:[A-Za-z\-]+:[\x20\t][^\r\n\\]*(?:\r?\n|\\r?\\n))*
        [A-Za-z0-9+/=]{16}
        (?:[A-Za-z0-9+/=\r\n]|\\[rn])*
    )
"#;

/// The generic assignment: a name that contains a secret word, an optional type, a separator
/// and a literal value. The regex is deliberately loose about the name (any identifier-ish run
/// containing `pass`, `token`, `key`, …) and the value; [`assignment`] makes the decisions.
const ASSIGNMENT: &str = r#"(?x)
    # The name: `password`, `DB_PASS`, `"api_key"`, `clientSecret`, `--token`, `spring.x.password`.
    (?P<key>[A-Za-z0-9_.\-]*(?i:pass|pwd|secret|token|key|credential)[A-Za-z0-9_.\-]*)
    # The close of a quoted or subscripted name: `"api_key":`, `['token'] =`.
    (?P<close>["'`]?\]?)
    # An optional type: `: &str`, `: Option<String>`, `: string`, or Go's ` string`. Bounded,
    # so that a long line of `key: …` prose is not rescanned to its end for every key.
    (?P<ty>
        [\x20\t]*:[\x20\t]*[&A-Za-z_\[(][A-Za-z0-9_&'<>\[\]():.\x20]{0,64}?
      | [\x20\t]+[A-Za-z_][A-Za-z0-9_]*
    )?
    (?P<before>[\x20\t]*)
    (?P<sep>:=|=>|=|:)
    (?P<after>[\x20\t]*)
    # A constructor around the literal: `String::from("…")`, `SecretString::new("…")`.
    (?:[A-Z][A-Za-z0-9_]*::(?:from|new)\()?
    (?:
        "(?P<dq>(?:[^"\\\r\n]|\\.)*)"
      | '(?P<sq>(?:[^'\\\r\n]|\\.)*)'
      | `(?P<bq>[^`\\\r\n]*)`
      # An unquoted value must not start like a reference, a type, a template or an operator,
      # and must end the line (optionally before a `#` comment) or be followed by a delimiter.
      # A backslash ends it too: inside a string literal it starts an escape such as `\r\n`.
      | (?P<bare>[^\s"'`,;(){}\[\]<>=&|!$%*@\#:?\\][^\s"'`,;(){}\[\]<>\\]*)
        (?:
            (?P<eol>[\x20\t]*(?:[\x20\t]\#[^\r\n]*)?(?:\r?\n|\z))
          | [\x20\t&"';\\]
        )
    )
"#;

/// An XML element named like a secret, holding text. Its groups are named like those of
/// [`ASSIGNMENT`] (`key`, and `dq` for a value taken as written), so [`assignment`] judges it.
const MARKUP_ELEMENT: &str = r"<(?P<key>[A-Za-z0-9_.:\-]*(?i:pass|pwd|secret|token|key|credential)[A-Za-z0-9_.:\-]*)>(?P<dq>[^<>\s]{1,512})</";

fn always(_: &str) -> bool {
    true
}

fn has_letter_and_digit(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_alphabetic()) && s.bytes().any(|b| b.is_ascii_digit())
}

/// A URL password that is a literal, not `${DB_PASS}`, `{password}`, `%s`, a `****` mask or
/// the documentation placeholder `user:password@host`.
fn is_literal_password(s: &str) -> bool {
    !is_template(s)
        && !is_mask(s)
        && !s.starts_with(MARKER)
        && !NOT_SECRETS.contains(&s.to_ascii_lowercase().as_str())
}

/// How every replacement starts. Text that already went through [`redact`] holds these where
/// the secrets were, and they are placeholders, not secrets: redacting twice finds nothing new.
const MARKER: &str = "[redacted:";

// ---------------------------------------------------------------------------------------------
// The generic assignment rule
// ---------------------------------------------------------------------------------------------

/// Judges one match of [`ASSIGNMENT`]: returns the value's span and kind if the name is a
/// secret's name and the value a literal secret rather than a reference, type or placeholder.
fn assignment(text: &str, caps: &Captures<'_>) -> Option<(usize, usize, &'static str)> {
    let key = caps.name("key")?;
    // Go's `name type = value` only follows a bare name: after `"…TOKEN" https:` the word is
    // not a type, and the quote is the end of a string.
    let quoted_name = caps.name("close").is_some_and(|m| !m.as_str().is_empty());
    let go_type = caps
        .name("ty")
        .is_some_and(|m| !m.as_str().trim_start().starts_with(':'));
    if quoted_name && go_type {
        return None;
    }
    if is_tuple_target(text, key.start()) {
        return None;
    }
    let words = name_words(key.as_str());
    let kind = classify_name(&words)?;

    let quoted = caps
        .name("dq")
        .or_else(|| caps.name("sq"))
        .or_else(|| caps.name("bq"));
    let (value, is_secret) = match quoted {
        Some(value) => (value, quoted_value_is_secret(value.as_str(), &words)),
        None => {
            let value = caps.name("bare")?;
            let context = BareContext::of(text, caps, key.start());
            (value, bare_value_is_secret(value.as_str(), &words, context))
        }
    };
    is_secret.then(|| {
        (
            value.start(),
            value.end(),
            refine_kind(kind, &words, value.as_str()),
        )
    })
}

/// Whether the name is a later target of a destructuring assignment, `user, password = "a", "b"`
/// (Python, Go, Lua): the first value belongs to the first name, so nothing can be said.
/// A keyword argument, `login(user, password="…")`, has a parenthesis before it and is not one.
fn is_tuple_target(text: &str, key_start: usize) -> bool {
    line_before(text, key_start).is_some_and(|before| {
        let before = before.trim_end();
        before.ends_with(',')
            && before
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_., \t".contains(&b))
    })
}

/// How far back [`line_before`] looks for the start of a line.
const LINE_LOOKBACK: usize = 256;

/// The text from the start of `pos`'s line to `pos`, if that is at most [`LINE_LOOKBACK`]
/// bytes: plenty for the checks that use it, and bounded so that a minified one-line file
/// with many names in it is still read in linear time.
fn line_before(text: &str, pos: usize) -> Option<&str> {
    let mut from = pos.saturating_sub(LINE_LOOKBACK);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let window = text.get(from..pos)?;
    match window.rfind('\n') {
        Some(i) => window.get(i + 1..),
        None if from == 0 => Some(window),
        None => None,
    }
}

/// Where an unquoted value stands, which decides how much evidence it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BareContext {
    /// `KEY=value` or `key: value` alone on its line: a `.env`, properties or YAML entry. Any
    /// literal counts, except that after `:` a type name (`token: string`) does not.
    Config { colon: bool },
    /// `key = value` alone on its line: INI, or a Python statement. Plain identifiers are
    /// taken for variables.
    Spaced,
    /// Anything else (mid-line, after a type, followed by more code): only a value that looks
    /// generated, with letters and digits, counts.
    Code,
}

impl BareContext {
    fn of(text: &str, caps: &Captures<'_>, key_start: usize) -> Self {
        let group = |name| caps.name(name).map_or("", |m| m.as_str());
        let alone = line_before(text, key_start).is_some_and(|before| {
            matches!(
                before.trim(),
                "" | "export" | "-" | "\"" | "'" | "- \"" | "- '"
            )
        });
        let ends_line = caps.name("eol").is_some();
        let typed = caps.name("ty").is_some();
        if !alone || !ends_line || typed {
            return BareContext::Code;
        }
        match group("sep") {
            ":" if group("before").is_empty() => BareContext::Config { colon: true },
            "=" if group("before").is_empty() && group("after").is_empty() => {
                BareContext::Config { colon: false }
            }
            _ => BareContext::Spaced,
        }
    }
}

/// Splits a name into lower-case words at `_`, `-`, `.`, other punctuation and camelCase
/// humps: `AWSSecretAccessKey` → `aws secret access key`, `x-api-key` → `x api key`.
fn name_words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        let prev = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
        let next = chars.get(i + 1).copied();
        let hump = c.is_ascii_uppercase()
            && prev.is_some_and(|p| {
                p.is_ascii_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_ascii_uppercase() && next.is_some_and(|n| n.is_ascii_lowercase()))
            });
        if hump && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        word.push(c.to_ascii_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Words that, before a final `key`, make it a secret: `API_KEY`, `SOME_SECRET_KEY`, `appKey`.
const KEY_QUALIFIERS: &[&str] = &[
    "access",
    "account",
    "app",
    "auth",
    "client",
    "encryption",
    "hmac",
    "jwt",
    "master",
    "private",
    "secret",
    "session",
    "signing",
    "webhook",
];

/// Single words that are secret names on their own.
const SECRET_WORDS: &[&str] = &[
    "accesskey",
    "appkey",
    "authkey",
    "encryptionkey",
    "masterkey",
    "privatekey",
    "secretkey",
    "signingkey",
];

/// The kind of secret a name holds, judged by its last word, so that `token_url`,
/// `max_tokens`, `password_min_length` and `public_key` are not secrets.
fn classify_name(words: &[String]) -> Option<&'static str> {
    let last = words.last()?.as_str();
    let prev = words
        .len()
        .checked_sub(2)
        .and_then(|i| words.get(i))
        .map(String::as_str);
    let password = ["password", "passwd", "passphrase", "passcode"]
        .iter()
        .any(|w| last.ends_with(w))
        || last == "pass"
        || (last == "pwd" && prev.is_some()); // a bare `PWD` is the working directory
    if password {
        Some("password")
    } else if last.ends_with("token") {
        Some("token")
    } else if last == "apikey" || (last == "key" && prev == Some("api")) {
        Some("api-key")
    } else if last.ends_with("secret")
        || last.ends_with("credential")
        || last.ends_with("credentials")
        || SECRET_WORDS.contains(&last)
        || (last == "key" && prev.is_some_and(|p| KEY_QUALIFIERS.contains(&p)))
        || (last == "base" && prev == Some("key") && words.iter().any(|w| w == "secret"))
    {
        Some("secret")
    } else {
        None
    }
}

/// Names a provider where the name and the value's shape both say so: an AWS secret access
/// key, a Twilio auth token, a Heroku API key.
fn refine_kind(kind: &'static str, words: &[String], value: &str) -> &'static str {
    let has = |w: &str| words.iter().any(|x| x == w);
    let base64_40 = value.len() == 40
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+');
    if base64_40 && (has("aws") || (has("secret") && has("access"))) {
        "aws-secret-key"
    } else if has("twilio") && value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        "twilio-auth-token"
    } else if has("heroku") && is_uuid(value) {
        "heroku-api-key"
    } else {
        kind
    }
}

/// Lower-cased values that are keywords, type names or placeholders, never secrets; also
/// GitHub Actions' `id-token: write` and fetch's `credentials: 'include'`.
const NOT_SECRETS: &[&str] = &[
    "none",
    "null",
    "nil",
    "undefined",
    "true",
    "false",
    "yes",
    "no",
    "on",
    "off",
    "required",
    "optional",
    "default",
    "empty",
    "todo",
    "tbd",
    "placeholder",
    "redacted",
    "dummy",
    "example",
    "password",
    "passwd",
    "pass",
    "secret",
    "token",
    "string",
    "str",
    "text",
    "char",
    "number",
    "boolean",
    "bool",
    "any",
    "unknown",
    "object",
    "never",
    "void",
    "bytes",
    "int",
    "integer",
    "float",
    "double",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "f32",
    "f64",
    "read",
    "write",
    "include",
    "omit",
    "same-origin",
];

/// Whether a quoted literal assigned to a secret name is a secret.
fn quoted_value_is_secret(value: &str, words: &[String]) -> bool {
    if value.len() < 4 || value.chars().any(char::is_whitespace) {
        return false; // empty, a short placeholder, or prose such as "Enter your password"
    }
    if is_template(value) || is_placeholder(value, words) || is_path_expression(value) {
        return false;
    }
    if value.contains("://") || is_file_path(value) || is_env_name(value) || is_label(value) {
        return false; // a URL (credentials in it have their own rule), a file, an env var name
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return value.len() >= 8;
    }
    true
}

/// Whether an unquoted value assigned to a secret name is a secret, given where it stands.
fn bare_value_is_secret(value: &str, words: &[String], context: BareContext) -> bool {
    // TypeScript's non-null `!` and GraphQL's required `!` are not part of the value.
    let value = value.trim_end_matches(['!', '?']);
    if value.is_empty() || is_template(value) || is_placeholder(value, words) {
        return false;
    }
    if is_path_expression(value) {
        return false; // config.password, Self::TOKEN, process.env.API_KEY
    }
    let digit = value.bytes().any(|b| b.is_ascii_digit());
    match context {
        BareContext::Config { colon } => {
            if value.bytes().all(|b| b.is_ascii_digit()) {
                return value.len() >= 8; // a numeric PIN, not a port or a count
            }
            // `token=auth_token`, or the last entry of a JS object: `withCredentials: kFlag`.
            let snake = is_identifier(value) && value.contains('_');
            let camel = is_identifier(value)
                && value.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                && value.bytes().any(|b| b.is_ascii_uppercase());
            let variable = (snake || (colon && camel)) && !digit;
            value.len() >= 3 && !variable && !(colon && is_type_name(value))
        }
        // In code, numbers (`12014u32`, `0xC000006B_u32`) and names (`__X32_SYSCALL_BIT`,
        // `other_secret2`) are not literals of a secret.
        _ if is_number(value) || (is_identifier(value) && value.contains('_')) => false,
        BareContext::Spaced => value.len() >= 6 && (digit || !is_identifier(value)),
        BareContext::Code => value.len() >= 8 && has_letter_and_digit(value),
    }
}

/// `${VAR}`, `$VAR`, `{{ var }}`, `{var}`, `%(var)s`, `%s`, `#{var}`, `<your-key>`: a value
/// filled in elsewhere.
fn is_template(value: &str) -> bool {
    let dollar_ref = value
        .strip_prefix('$')
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '{' || c == '(');
    dollar_ref
        || ["${", "{{", "#{", "%(", "{}", "%s", "%d"]
            .iter()
            .any(|t| value.contains(t))
        || (value.starts_with('{') && value.ends_with('}'))
        || (value.starts_with('<') && value.ends_with('>'))
}

/// `****`, `xxxxxxxx`, `...`: a masked or blank value.
fn is_mask(value: &str) -> bool {
    let mut chars = value.chars();
    let first = chars.next();
    first.is_none_or(|f| chars.all(|c| c == f) || value.chars().all(|c| "*x.#-_:•".contains(c)))
}

/// Keywords, type names, masks, `your_api_key_here`, an earlier `[redacted:…]`, or the name
/// itself (`token=token`, `"password": "password"`, `api_key: apiKey`).
fn is_placeholder(value: &str, words: &[String]) -> bool {
    let lower = value.to_ascii_lowercase();
    if NOT_SECRETS.contains(&lower.as_str())
        || is_mask(value)
        || lower.starts_with("your")
        || value.starts_with(MARKER)
    {
        return true;
    }
    // Words only, one of them the name's: `mytoken`, `use-credentials`, `my-auth-token-here`.
    let wordy = value
        .bytes()
        .all(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'-');
    let names_itself = words
        .last()
        .is_some_and(|last| lower.replace(['_', '-'], "").contains(last.as_str()));
    wordy && names_itself
}

fn is_identifier(value: &str) -> bool {
    let mut bytes = value.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `a.b`, `a::b`, `a->b`, `a?.b`, `super::Foundation::`: a field or path, not a literal.
fn is_path_expression(value: &str) -> bool {
    let dotted = value
        .replace("::", ".")
        .replace("?.", ".")
        .replace("->", ".");
    let dotted = dotted.trim_matches('.');
    value.contains(['.', ':', '>']) && dotted.split('.').all(is_identifier)
}

/// `./certs/key.pem`, `~/.ssh/id_rsa`, `/etc/ssl/private/server.key`, `C:\keys\app.pfx`.
fn is_file_path(value: &str) -> bool {
    if ["./", "../", "~/"].iter().any(|p| value.starts_with(p)) {
        return true;
    }
    let windows = value.as_bytes().get(1..3) == Some(b":\\");
    let unix = value.starts_with('/')
        && value
            .rsplit('/')
            .next()
            .is_some_and(|file| file.contains('.'))
        && !value.contains(['+', '=']);
    windows || unix
}

/// `OPENAI_API_KEY`: the name of an environment variable, as configs that point at one use.
fn is_env_name(value: &str) -> bool {
    value.contains('_')
        && value.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// One capitalised word, as in a translation file: `"password": "Passwort"`.
fn is_label(value: &str) -> bool {
    let mut chars = value.chars();
    chars.next().is_some_and(char::is_uppercase) && chars.all(char::is_lowercase)
}

/// `String`, `SecretString`, `ID`, `string`, `u64`: a type in a declaration such as
/// `token: string` (TypeScript without semicolons, Python annotations, GraphQL).
fn is_type_name(value: &str) -> bool {
    let capitalised_word = value.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
        && value.bytes().all(|b| b.is_ascii_alphabetic());
    capitalised_word || NOT_SECRETS.contains(&value.to_ascii_lowercase().as_str())
}

/// A numeric literal in any common language: `-42`, `1_000`, `0xFF_u32`, `12014u32`, `1.5e3`.
fn is_number(value: &str) -> bool {
    static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?i)^[-+]?(?:0x[0-9a-f_]+|0o[0-7_]+|0b[01_]+|[0-9][0-9_]*(?:\.[0-9_]+)?(?:e[-+]?[0-9]+)?)(?:_?(?:[iu](?:8|16|32|64|128|size)|f32|f64|u?l{0,2}|n))?$",
        )
        .expect("the numeric-literal pattern must compile")
    });
    NUMBER.is_match(value)
}

fn is_uuid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    /// Marks where a case's secret goes in its surrounding code.
    const MARK: &str = "{S}";

    // Fake secrets with the right shapes. Provider prefixes are split with `concat!` so that
    // secret scanners reading this source do not flag the fixtures; every body is visibly fake.
    const PEM_RSA: &str = concat!(
        "-----BEGIN RSA PRIVATE",
        " KEY-----\n",
        "MIIEpAIBAAKCAQEAfakeFAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKE0123456789\n",
        "FAKEKEYMATERIALfakeKEYMATERIALfakeKEYMATERIAL0123456789+/abcdef==\n",
        "-----END RSA PRIVATE",
        " KEY-----"
    );
    const PEM_OPENSSH: &str = concat!(
        "-----BEGIN OPENSSH PRIVATE",
        " KEY-----\n",
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABFAKEFAKEFAKEFAKE\n",
        "-----END OPENSSH PRIVATE",
        " KEY-----"
    );
    const PEM_EC_YAML: &str = concat!(
        "-----BEGIN EC PRIVATE",
        " KEY-----\n",
        "    MHcCAQEEIFAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKEfakeoAoGCCqGSM49\n",
        "    -----END EC PRIVATE",
        " KEY-----"
    );
    const PEM_PKCS8_ESCAPED: &str = concat!(
        "-----BEGIN PRIVATE",
        " KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCFAKEfakeFAKEfake0123\\n",
        "FAKEfakeFAKEfake0123456789==\\n-----END PRIVATE",
        " KEY-----"
    );
    const PEM_PGP: &str = concat!(
        "-----BEGIN PGP PRIVATE",
        " KEY BLOCK-----\n\n",
        "lQOYBGFAKEfakeFAKEfakeFAKEfakeFAKEfake0123456789abcdef\n",
        "=FaKe\n",
        "-----END PGP PRIVATE",
        " KEY BLOCK-----"
    );
    const AWS_KEY_ID: &str = concat!("AKIA", "IOSFODNN7EXAMPLE");
    const AWS_STS_KEY_ID: &str = concat!("ASIA", "FAKE0000EXAMPLE1");
    const AWS_SECRET: &str = concat!("wJalrXUtnFEMI/K7MDENG/", "bPxRfiCYEXAMPLEKEY");
    const GITHUB_CLASSIC: &str = concat!("gh", "p_", "FAKEfake0123456789FAKEfake0123456789");
    const GITHUB_OAUTH: &str = concat!("gh", "o_", "FAKEfake0123456789FAKEfake0123456789");
    const GITHUB_FINE: &str = concat!(
        "github",
        "_pat_",
        "11FAKEFAKE0123456789ab_",
        "fakeFAKEfake0123456789fakeFAKEfake0123456789fakeFAKEfake012"
    );
    const GITLAB: &str = concat!("gl", "pat-", "FAKEfake0123456789xy");
    const SLACK_BOT: &str = concat!(
        "xo",
        "xb-",
        "000000000000-0000000000000-FAKEfakeFAKEfakeFAKEfake"
    );
    const SLACK_WEBHOOK: &str = concat!(
        "https://hooks.slack",
        ".com/services/",
        "T00000000/B00000000/FAKEfakeFAKEfakeFAKEfake"
    );
    const DISCORD_WEBHOOK: &str = concat!(
        "https://discord",
        ".com/api/webhooks/",
        "123456789012345678/FAKEfake0123456789FAKEfake0123456789"
    );
    const STRIPE_LIVE: &str = concat!("sk", "_live_", "FAKEfake0123456789FAKEfake");
    const STRIPE_RESTRICTED: &str = concat!("rk", "_live_", "FAKEfake0123456789FAKEfake");
    const STRIPE_TEST: &str = concat!("sk", "_test_", "FAKEfake0123456789FAKEfake");
    const GOOGLE: &str = concat!("AI", "za", "SyFAKE-fake_FAKE0123456789abcdefghi");
    const OPENAI_PROJECT: &str = concat!(
        "sk-",
        "proj-",
        "FAKEfake0123456789FAKEfake0123456789FAKEfake01"
    );
    const OPENAI_LEGACY: &str = concat!("sk-", "FAKEfake0123456789T3BlbkFJFAKEfake0123456789");
    const ANTHROPIC: &str = concat!(
        "sk-",
        "ant-",
        "api03-",
        "FAKEfake0123456789FAKEfake0123456789-fakeAA"
    );
    const NPM: &str = concat!("np", "m_", "FAKEfake0123456789FAKEfake0123456789");
    const PYPI: &str = concat!(
        "py",
        "pi-",
        "AgEIcHlwaS5vcmc",
        "CJDAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMAACFAKEFAKE"
    );
    const SENDGRID: &str = concat!(
        "SG",
        ".FAKEfake0123456789FAKEf",
        ".FAKEfake0123456789FAKEfake0123456789FAKEfak"
    );
    const TWILIO_KEY: &str = concat!("S", "K", "0123456789abcdef0123456789abcdef");
    const TWILIO_SID: &str = concat!("A", "C", "fedcba9876543210fedcba9876543210");
    const HEX_32: &str = "0123456789abcdef0123456789abcdef";
    const JWT: &str = concat!(
        "eyJhbGciOiJIUzI1NiJ9",
        ".eyJzdWIiOiJmYWtlIn0",
        ".ZmFrZS1zaWduYXR1cmUtZm9yLXRlc3Rz"
    );
    const OPAQUE: &str = "FAKEfake0123456789opaqueTOKEN";
    const BASIC: &str = "ZmFrZXVzZXI6ZmFrZXBhc3M=";
    const AZURE: &str = concat!(
        "FAKEfake0123456789FAKEfake0123456789FAKEfake0123456789",
        "FAKEfake0123456789FAKEfake0123456789FAKE=="
    );
    const HEROKU: &str = "01234567-89ab-cdef-0123-456789abcdef";
    const DISCORD_BOT: &str = concat!(
        "MTAwMDAwMDAwMDAwMDAwMDAwMA",
        ".GFakeX",
        ".FAKEfake0123456789FAKEfake0123456789ab"
    );

    /// (expected kind, surrounding code with `{S}` where the secret goes, the secret).
    const SECRET_CASES: &[(&str, &str, &str)] = &[
        // Private keys.
        (
            "private-key",
            "const KEY: &str = r\"{S}\";\n\nfn main() {}\n",
            PEM_RSA,
        ),
        (
            "private-key",
            "cat > ~/.ssh/id_ed25519 <<'EOF'\n{S}\nEOF\nchmod 600 ~/.ssh/id_ed25519\n",
            PEM_OPENSSH,
        ),
        (
            "private-key",
            "tls:\n  key: |\n    {S}\n  cert: /etc/tls/cert.pem\n",
            PEM_EC_YAML,
        ),
        (
            "private-key",
            "{\n  \"type\": \"service_account\",\n  \"private_key\": \"{S}\\n\",\n  \"client_email\": \"bot@example.iam.gserviceaccount.com\"\n}\n",
            PEM_PKCS8_ESCAPED,
        ),
        (
            "private-key",
            "// signing key for release tests\nconst signingKey = `{S}`;\n",
            PEM_PGP,
        ),
        // Cloud and forge credentials.
        (
            "aws-access-key-id",
            "# .env\nAWS_ACCESS_KEY_ID={S}\nAWS_REGION=eu-west-1\n",
            AWS_KEY_ID,
        ),
        (
            "aws-access-key-id",
            "const creds = { accessKeyId: \"{S}\", region: \"us-east-1\" };\n",
            AWS_STS_KEY_ID,
        ),
        (
            "aws-secret-key",
            "[default]\naws_access_key_id = AKIA\naws_secret_access_key = {S}\nregion = eu-west-1\n",
            AWS_SECRET,
        ),
        (
            "aws-secret-key",
            "const client = new S3Client({\n  credentials: { secretAccessKey: \"{S}\" },\n});\n",
            AWS_SECRET,
        ),
        (
            "github-token",
            "#!/bin/sh\nexport GITHUB_TOKEN={S}\ngh pr list\n",
            GITHUB_CLASSIC,
        ),
        (
            "github-token",
            "const octokit = new Octokit({ auth: \"{S}\" });\n",
            GITHUB_OAUTH,
        ),
        (
            "github-token",
            "env:\n  GH_PAT: {S}\n  CI: true\n",
            GITHUB_FINE,
        ),
        (
            "gitlab-token",
            "curl --header \"PRIVATE-TOKEN: {S}\" https://gitlab.example.com/api/v4/projects\n",
            GITLAB,
        ),
        (
            "slack-token",
            "client = WebClient(token=\"{S}\")\nclient.chat_postMessage(channel=\"#ops\", text=\"hi\")\n",
            SLACK_BOT,
        ),
        (
            "slack-webhook",
            "{\n  \"alerts\": { \"webhook\": \"{S}\" }\n}\n",
            SLACK_WEBHOOK,
        ),
        (
            "discord-webhook",
            "WEBHOOK = \"{S}\"\nrequests.post(WEBHOOK, json=payload)\n",
            DISCORD_WEBHOOK,
        ),
        (
            "stripe-key",
            "Stripe.api_key = '{S}'\nStripe::Charge.create(amount: 100)\n",
            STRIPE_LIVE,
        ),
        (
            "stripe-key",
            "const stripe = new Stripe(\"{S}\", { apiVersion: \"2024-06-20\" });\n",
            STRIPE_RESTRICTED,
        ),
        ("stripe-key", "STRIPE_SECRET_KEY={S}\n", STRIPE_TEST),
        (
            "google-api-key",
            "const firebaseConfig = {\n  apiKey: \"{S}\",\n  projectId: \"demo\",\n};\n",
            GOOGLE,
        ),
        // AI and package-registry tokens.
        (
            "openai-key",
            "from openai import OpenAI\nclient = OpenAI(api_key=\"{S}\")\n",
            OPENAI_PROJECT,
        ),
        (
            "openai-key",
            "OPENAI_API_KEY={S}\nMODEL=gpt-4o\n",
            OPENAI_LEGACY,
        ),
        (
            "anthropic-key",
            "const anthropic = new Anthropic({ apiKey: '{S}' });\n",
            ANTHROPIC,
        ),
        (
            "npm-token",
            "registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={S}\n",
            NPM,
        ),
        (
            "pypi-token",
            "[pypi]\nusername = __token__\npassword = {S}\n",
            PYPI,
        ),
        (
            "sendgrid-key",
            "let mailer = SendGrid::new(\"{S}\");\n",
            SENDGRID,
        ),
        (
            "twilio-api-key",
            "const client = twilio(\"{S}\", apiSecret, { accountSid });\n",
            TWILIO_KEY,
        ),
        (
            "twilio-account-sid",
            "account_sid = \"{S}\"\nclient = Client(account_sid, auth_token)\n",
            TWILIO_SID,
        ),
        (
            "twilio-auth-token",
            "TWILIO_ACCOUNT_SID=AC\nTWILIO_AUTH_TOKEN={S}\n",
            HEX_32,
        ),
        (
            "heroku-api-key",
            "# deploy.env\nHEROKU_API_KEY={S}\nHEROKU_APP=demo\n",
            HEROKU,
        ),
        (
            "discord-bot-token",
            "bot = commands.Bot(command_prefix=\"!\")\nbot.run(\"{S}\")\n",
            DISCORD_BOT,
        ),
        // Tokens in protocols.
        (
            "jwt",
            "it(\"decodes\", () => {\n  const session = \"{S}\";\n  expect(decode(session).sub).toBe(\"fake\");\n});\n",
            JWT,
        ),
        (
            "bearer-token",
            "curl -H \"Authorization: Bearer {S}\" https://api.example.com/v1/me\n",
            OPAQUE,
        ),
        (
            "bearer-token",
            "GET /v1/me HTTP/1.1\nHost: api.example.com\nauthorization: bearer {S}\n\n",
            OPAQUE,
        ),
        (
            "bearer-token",
            "const res = await fetch(url, {\n  headers: { \"Authorization\": \"token {S}\" },\n});\n",
            OPAQUE,
        ),
        (
            "basic-auth",
            "headers = {\"Authorization\": \"Basic {S}\"}\n",
            BASIC,
        ),
        (
            "url-password",
            "DATABASE_URL=postgres://app:{S}@db.internal:5432/app\n",
            "s3cr3t-FAKE-pw",
        ),
        (
            "url-password",
            "let url = \"redis://:{S}@cache:6379/0\";\n",
            "FAKEredisPW1",
        ),
        (
            "azure-storage-key",
            "\"ConnectionStrings\": {\n  \"Blob\": \"DefaultEndpointsProtocol=https;AccountName=demo;AccountKey={S};EndpointSuffix=core.windows.net\"\n}\n",
            AZURE,
        ),
        // Passwords and secrets in assignments: only the value goes.
        (
            "password",
            "db:\n  host: localhost\n  password: {S}\n  pool: 5\n",
            "hunter2-FAKE",
        ),
        (
            "password",
            "POSTGRES_USER=app\nPOSTGRES_PASSWORD={S}\n",
            "Sup3rFake!",
        ),
        (
            "password",
            "{\n  \"username\": \"admin\",\n  \"password\": \"{S}\"\n}\n",
            "fake-P@ssw0rd",
        ),
        (
            "password",
            "fn connect() {\n    let db_pass = '{S}';\n}\n",
            "fakepass1",
        ),
        (
            "password",
            "const DB_PASSWORD: &str = \"{S}\";\n",
            "fake-db-pw-42",
        ),
        (
            "password",
            "func main() {\n\tpassword := \"{S}\"\n\tlogin(password)\n}\n",
            "FakeGoPw9",
        ),
        (
            "password",
            "[client]\nuser = root\npassword = {S}\n",
            "hunter2",
        ),
        (
            "password",
            "func main() {\n\tvar dbPassword string = \"{S}\"\n}\n",
            "FakeGoPw10",
        ),
        (
            "password",
            "login(\"admin\", \"password\", password=\"{S}\")\n",
            "fake-kwarg-pw7",
        ),
        (
            "password",
            "docker run -e MYSQL_ROOT_PASSWORD={S} -d mysql:8\n",
            "fakeRootPw88",
        ),
        (
            "password",
            "<server>\n  <id>nexus</id>\n  <password>{S}</password>\n</server>\n",
            "FAKEmavenPw123",
        ),
        ("token", "secret_token={S}\n", "tok-FAKE-0123456789"),
        (
            "token",
            "spring.security.oauth2.refresh-token = {S}\n",
            "FAKE0123refresh",
        ),
        (
            "api-key",
            "config = {\"api_key\": \"{S}\", \"timeout\": 30}\n",
            "3f9a1cFAKE0d2e4b6a8c0e2f4a6b8c0",
        ),
        (
            "api-key",
            "  private readonly apiKey: string = \"{S}\";\n",
            "fake-api-key-0123",
        ),
        (
            "secret",
            "SOME_SECRET_KEY={S}\nDEBUG=false\n",
            "django-insecure-FAKE0123",
        ),
        (
            "secret",
            "oauth:\n  client_secret: \"{S}\"\n",
            "FAKEclientSECRET0123",
        ),
        (
            "secret",
            "Rails.application.configure do\n  config.secret_key_base = \"{S}\"\nend\n",
            "fakebase0123456789abcdef",
        ),
    ];

    #[test]
    fn every_secret_format_is_redacted_and_its_surroundings_kept() {
        let mut formats = std::collections::BTreeSet::new();
        let mut failures = Vec::new();
        for &(kind, template, secret) in SECRET_CASES {
            assert_eq!(
                template.matches(MARK).count(),
                1,
                "one secret per case: {template:?}"
            );
            let start = template.find(MARK).expect("the case has a marker");
            let input = template.replace(MARK, secret);
            let expected = template.replace(MARK, &format!("[redacted:{kind}]"));
            let span = Redaction {
                kind,
                start,
                end: start + secret.len(),
            };
            let (output, found) = redact(&input);
            if output != expected || found != [span.clone()] {
                failures.push(format!("{kind}: got {output:?} {found:?}"));
            }
            let again = redact(&output);
            if again.0 != output || !again.1.is_empty() {
                failures.push(format!("{kind}: redacting twice changed {output:?}"));
            }
            formats.insert(kind);
        }
        assert!(
            failures.is_empty(),
            "{} failing cases:\n{}",
            failures.len(),
            failures.join("\n")
        );
        assert!(
            SECRET_CASES.len() >= 20 && formats.len() >= 20,
            "{formats:?}"
        );
    }

    /// Ordinary code that merely looks a little like secrets. None of it may change.
    const ORDINARY: &[&str] = &[
        // Hashes and ids.
        "let head = \"3f786850e387550fdab836ed7e6dc881de23001b\";\ngit checkout 3f786850e387550fdab836ed7e6dc881de23001b\n",
        "EXPECTED_SHA256 = \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"\n",
        "image: postgres@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n",
        "{ \"id\": \"123e4567-e89b-12d3-a456-426614174000\", \"token_type\": \"Bearer\" }\n",
        // Test data.
        "let data = \"SGVsbG8sIFdvcmxkISBUaGlzIGlzIGEgdGVzdCBmaXh0dXJlLg==\";\nlet payload = base64::decode(\"eyJhbGciOiJIUzI1NiJ9\")?;\n",
        "fixture: \"dGhpcyBpcyBhIHRlc3QgZml4dHVyZSB3aXRoIHNvbWUgYnl0ZXM=\"\nexpected: \"ZXhwZWN0ZWQgb3V0cHV0\"\n",
        "#[test]\nfn sha1_abc() {\n    let expected = hex!(\"a9993e364706816aba3e25717850c26c9cd0d89d\");\n    let expected_sha256 = \"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\";\n}\n",
        "\"node_modules/lodash\": {\n  \"version\": \"4.17.21\",\n  \"integrity\": \"sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXPs17LhbZVGedAJv8XZ1tvj5FvSg==\"\n}\n",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFake user@laptop\n",
        // Declarations without literal values.
        "pub struct Login {\n    pub username: String,\n    pub password: String,\n    pub token: Option<Token>,\n    pub api_key: SecretString,\n}\n",
        "impl Session {\n    pub fn token(&self) -> &str {\n        &self.token\n    }\n    fn password(&self) -> Option<&str> { self.password.as_deref() }\n}\n",
        "interface Credentials {\n  password?: string;\n  token: string\n  apiKey: string | undefined;\n}\n",
        "def login(user: str, password: str) -> Token:\n    password = config.password\n    token = issue_token(user, password)\n    return token\n",
        "let password = config.password.clone();\nlet token = lexer.next_token()?;\nself.password = password;\nconst apiKey = process.env.OPENAI_API_KEY\n",
        "client = Client(\n    api_key=api_key,\n    token=token\n)\n",
        "@dataclass\nclass Settings:\n    password: str = \"\"\n    secret_key: Optional[str] = None\n    token: str = field(default_factory=str)\n",
        // References, placeholders and empties.
        "db:\n  password: ${DB_PASSWORD}\n  token: ${{ secrets.GITHUB_TOKEN }}\n  api_key: \"{{ .Values.apiKey }}\"\n",
        "DB_PASSWORD=\nAPI_KEY=$API_KEY\nSECRET_KEY=${SECRET_KEY}\nAUTH_TOKEN=$(cat /run/secrets/token)\n",
        "{ \"password\": \"\", \"token\": null, \"api_key\": \"YOUR_API_KEY\", \"secret\": \"<secret>\" }\n",
        "password = \"\"\nPASSWORD_MIN_LENGTH = 12\nmax_tokens = 1024\nMAX_TOKENS=4096\ntoken_url: https://auth.example.com/oauth/token\n",
        "<input type=\"password\" name=\"password\" autocomplete=\"current-password\">\n",
        "{ \"login\": { \"password\": \"Passwort\", \"token\": \"Token\" } }\n",
        // Prose, CSS and URLs.
        "// The token is refreshed when it expires; see refresh_token().\n# password: rotate every 90 days\n/* secret: nothing here */\n",
        ".button { color: #ff00aa; background: #1e1e1e; --token-color: #abcdef; }\n",
        "const API = \"https://api.example.com:8443/v1/users?page=2&sort=name\";\ngit@github.com:example/repo.git\n",
        "headers.insert(AUTHORIZATION, format!(\"Bearer {token}\").parse()?);\n// uses a bearer token for internationalization requests\n",
        "private_key_path = \"/etc/ssl/private/server.key\"\nPRIVATE_KEY = \"-----BEGIN RSA PRIVATE KEY-----\"\n",
        "Password string `json:\"password\"`\nToken    string `json:\"token,omitempty\"`\n",
        "if password == \"\" || token != expected { return Err(Error::Auth); }\n",
        "<servers>\n  <password>${env.NEXUS_PASSWORD}</password>\n  <publicKey>ssh-ed25519</publicKey>\n</servers>\n",
        "volumes:\n  - secretKeyRef:\n      name: db\n      key: password\n",
        // Shapes met in real code that an earlier version of these rules got wrong.
        "permissions:\n  contents: read\n  id-token: write\n",
        "const res = await fetch(url, {\n  credentials: 'include',\n  mode: 'cors'\n})\nconst USE_CREDENTIALS = 'use-credentials'\nconst proto = {\n  withCredentials: kEnumerableProperty\n}\n",
        "pub const ERROR_INTERNET_INCORRECT_PASSWORD: u32 = 12014u32;\npub const STATUS_NO_TOKEN: NTSTATUS = 0xC000007C_u32 as _;\npub const SYS_memfd_secret: c_long = __X32_SYSCALL_BIT + 447;\n",
        "fn NtPrivilegeCheck(clienttoken : super::super::Win32::Foundation:: HANDLE) -> NTSTATUS;\n",
        "user_pass = '%s:%s' % (unquote(user), unquote(password))\n// proto://username:password@hostname.com:user/repo\n",
        "user, password = \"wile\", \"coyote\"\npassword = \":****\"\nhelp=\"a proxy as scheme://[user:passwd@]proxy.server:port\"\n",
        "b\"HTTP/1.1 200 OK\\r\\nAccess-Control-Allow-Credentials: hell\\x01o\\r\\nBread: baguette\\r\\n\\r\\n\"\n",
    ];

    #[test]
    fn ordinary_code_is_left_alone() {
        assert!(ORDINARY.len() >= 15);
        let failures: Vec<String> = ORDINARY
            .iter()
            .filter_map(|snippet| {
                let (output, found) = redact(snippet);
                (output != *snippet || !found.is_empty()).then(|| format!("{output:?} {found:?}"))
            })
            .collect();
        assert!(
            failures.is_empty(),
            "changed snippets:\n{}",
            failures.join("\n")
        );
    }

    #[test]
    fn several_secrets_in_one_text_come_back_in_order_with_original_offsets() {
        let text = format!(
            "// café ☕ config\nexport GITHUB_TOKEN={GITHUB_CLASSIC}\nurl = \"https://bob:{pw}@example.com\"\nkey = \"{AWS_KEY_ID}\"\n",
            pw = "FAKEpw123"
        );
        let (output, found) = redact(&text);
        let kinds: Vec<&str> = found.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, ["github-token", "url-password", "aws-access-key-id"]);
        assert_eq!(&text[found[0].start..found[0].end], GITHUB_CLASSIC);
        assert_eq!(&text[found[1].start..found[1].end], "FAKEpw123");
        assert_eq!(&text[found[2].start..found[2].end], AWS_KEY_ID);
        assert!(found.windows(2).all(|w| w[0].end <= w[1].start));
        assert_eq!(
            output,
            "// café ☕ config\nexport GITHUB_TOKEN=[redacted:github-token]\nurl = \"https://bob:[redacted:url-password]@example.com\"\nkey = \"[redacted:aws-access-key-id]\"\n"
        );
        assert_eq!(redact(&text), (output, found), "deterministic");
    }

    #[test]
    fn overlaps_go_to_the_earliest_start_then_the_longest() {
        // The assignment rule's value starts before the URL's password inside it, so it wins.
        let text = "DB_PASSWORD=postgres://u:FAKEpw1@h/db\n";
        let (_, found) = redact(text);
        assert_eq!(
            found,
            vec![Redaction {
                kind: "password",
                start: 12,
                end: text.len() - 1
            }]
        );
        // A JWT sent as a bearer token: equal spans, so the rule listed first (`jwt`) wins.
        let text = format!("Authorization: Bearer {JWT}");
        let (_, found) = redact(&text);
        assert_eq!(
            found,
            vec![Redaction {
                kind: "jwt",
                start: 22,
                end: text.len()
            }]
        );
    }

    #[test]
    fn a_key_block_cut_short_is_still_redacted_but_a_lone_header_is_not() {
        let cut = PEM_RSA
            .split("-----END")
            .next()
            .expect("the fixture has an END line");
        let text = format!("key: |\n  {cut}");
        let (output, found) = redact(&text);
        assert_eq!(output, "key: |\n  [redacted:private-key]");
        assert_eq!(found.len(), 1);
        let header = concat!(
            "const HEADER: &str = \"-----BEGIN RSA PRIVATE",
            " KEY-----\";\n"
        );
        assert_eq!(redact(header).1, vec![]);
    }

    #[test]
    fn empty_text_and_text_without_secrets() {
        assert_eq!(redact(""), (String::new(), vec![]));
        assert_eq!(redact("fn main() {}\n").0, "fn main() {}\n");
    }

    #[test]
    fn rules_compile_and_kinds_are_kebab_case() {
        let mut kinds: Vec<&str> = RULES.iter().map(|r| r.kind).collect();
        kinds.extend(ASSIGNMENT_KINDS);
        kinds.sort_unstable();
        kinds.dedup();
        assert!(kinds.len() >= 20, "{kinds:?}");
        for kind in kinds {
            let kebab = kind
                .split('-')
                .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()));
            assert!(kebab, "{kind}");
        }
    }

    #[test]
    fn names_split_into_words() {
        assert_eq!(
            name_words("AWSSecretAccessKey"),
            ["aws", "secret", "access", "key"]
        );
        assert_eq!(name_words("x-api-key"), ["x", "api", "key"]);
        assert_eq!(name_words("_authToken"), ["auth", "token"]);
        assert_eq!(classify_name(&name_words("max_tokens")), None);
        assert_eq!(classify_name(&name_words("token_url")), None);
        assert_eq!(classify_name(&name_words("public_key")), None);
        assert_eq!(classify_name(&name_words("PWD")), None);
        assert_eq!(classify_name(&name_words("dbPassword")), Some("password"));
        assert_eq!(
            classify_name(&name_words("STRIPE_API_KEY")),
            Some("api-key")
        );
    }

    #[test]
    fn secret_files_are_recognised_by_path_alone() {
        let secret = [
            ".env",
            "app/.env.local",
            ".env.production",
            "deploy/prod.env",
            ".envrc",
            "certs/server.pem",
            "tls/private.KEY",
            "keystore.p12",
            "/home/me/.ssh/id_rsa",
            "id_ed25519",
            ".npmrc",
            "~/.pypirc",
            "/home/me/.aws/credentials",
            ".netrc",
            ".git-credentials",
            "/home/me/.kube/config",
            "infra/terraform.tfstate",
            "infra/terraform.tfstate.backup",
        ];
        for path in secret {
            assert!(is_secret_file(Path::new(path)), "{path} should be secret");
        }
        let ordinary = [
            "src/env.rs",
            "environment.ts",
            ".env.example",
            ".env.local.sample",
            ".env.template",
            "/home/me/.ssh/id_rsa.pub",
            "/home/me/.ssh/known_hosts",
            "src/credentials.rs",
            "lib/credentials",
            "docs/aws/credentials.md",
            "/home/me/.aws/config",
            "config",
            "src/key.rs",
            "monkey.py",
            "README.md",
            "",
            "/",
        ];
        for path in ordinary {
            assert!(
                !is_secret_file(Path::new(path)),
                "{path} should not be secret"
            );
        }
    }

    /// About `bytes` of varied, ordinary source: Rust, TypeScript, YAML and lock-file lines
    /// with hashes, UUIDs, getters and fields named like secrets but holding no literal.
    fn ordinary_source(bytes: usize) -> String {
        let mut out = String::with_capacity(bytes + 1024);
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut i = 0u64;
        while out.len() < bytes {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let (a, b) = (state, state.rotate_left(23) ^ 0x5555_5555_5555_5555);
            let sha1 = format!("{a:016x}{b:016x}{:08x}", (a >> 11) as u32);
            let uuid = format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                (a >> 32) as u32,
                (a >> 16) as u16,
                (b & 0xfff) as u16,
                ((b >> 12) & 0xfff) as u16,
                b >> 16
            );
            let written = write!(
                out,
                "/// Returns the session token for user {i}, if one was issued.\n\
                 pub fn token_{i}(&self) -> Option<&str> {{\n    self.tokens.get({i}).map(String::as_str)\n}}\n\
                 struct Account{i} {{ id: Uuid, password: String, api_key: Option<Secret> }}\n\
                 let commit_{i} = \"{sha1}\";\nlet id_{i} = \"{uuid}\";\n\
                 const EXPECTED_{i}: &str = \"{sha1}{sha1}\";\n\
                 export function refresh{i}(token: string): Promise<Token> {{ return api.refresh(token, {i}); }}\n\
                 url: https://example.com/api/v1/items/{i}?page={i}\n  password: ${{DB_PASSWORD}}\n\
                 \"integrity\": \"sha1-{sha1}\",\ncolor: #{:06x};\n\n",
                a & 0xff_ffff
            );
            written.expect("writing to a String cannot fail");
            i += 1;
        }
        out
    }

    #[test]
    fn runs_over_200_kb_of_ordinary_code_without_touching_it() {
        let source = ordinary_source(200 * 1024);
        assert!(source.len() >= 200 * 1024);
        let (output, found) = redact(&source);
        assert_eq!(found, vec![]);
        assert!(output == source);
    }
}
