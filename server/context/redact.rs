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

/// The cap of each pattern's lazy DFA cache, per thread.
const REDACT_DFA_BYTES: usize = 256 * 1024;

/// How a rule turns a regex match into a secret span.
enum Extract {
    /// The whole match is the secret, if the check accepts it.
    Whole(fn(&str) -> bool),
    /// Capture group 1 is the secret (the rest is context such as `Bearer ` or `AccountKey=`),
    /// if the check accepts it.
    Group(fn(&str) -> bool),
    /// The generic `name = value` grammar: [`assignment`] judges the value and names the kind.
    Assignment,
    /// The same judgement for an XML element's text of at most [`ELEMENT_TEXT_MAX`] characters.
    Element,
}

impl Rule {
    fn new(kind: &'static str, pattern: &str, extract: Extract) -> Self {
        // Each thread that redacts keeps a lazy DFA cache per pattern; at the default cap (2 MiB)
        // they added up to several MiB of a typing session's memory.
        let regex = regex::RegexBuilder::new(pattern)
            .dfa_size_limit(REDACT_DFA_BYTES)
            .build()
            .unwrap_or_else(|err| {
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
            Extract::Assignment | Extract::Element => {
                // A rejected match (`password: String = …` read the wrong way, a placeholder)
                // must not hide a name inside its span, so scanning resumes after its name.
                let mut at = 0;
                while let Some(caps) = self.regex.captures_at(text, at) {
                    let Some(whole) = caps.get(0) else { break };
                    let fits = !matches!(self.extract, Extract::Element)
                        || caps
                            .name("dq")
                            .is_none_or(|v| v.as_str().chars().count() <= ELEMENT_TEXT_MAX);
                    at = match assignment(text, &caps).filter(|_| fits) {
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
    use Extract::{Assignment, Element, Group, Whole};
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
        Rule::new("secret", MARKUP_ELEMENT, Element),
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
/// The text's length is checked after the match ([`ELEMENT_TEXT_MAX`]), not counted in the
/// pattern: a bounded repeat of a Unicode class compiles to one copy of the class per count,
/// and every thread that redacts keeps a search cache sized to the pattern's states (8,249
/// states with `{1,512}`, about 1 MiB of cache per thread; 72 without).
const MARKUP_ELEMENT: &str = r"<(?P<key>[A-Za-z0-9_.:\-]*(?i:pass|pwd|secret|token|key|credential)[A-Za-z0-9_.:\-]*)>(?P<dq>[^<>\s]+)</";

/// The longest element text [`MARKUP_ELEMENT`] takes for a value (characters).
const ELEMENT_TEXT_MAX: usize = 512;

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
pub const MARKER: &str = "[redacted:";

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

/// The fake secrets and the decoys, shared with `tests/secrets.rs`.
#[cfg(test)]
#[path = "../../tests/fixtures/secret_corpus.rs"]
mod secret_corpus;

#[cfg(test)]
mod tests {
    use super::secret_corpus::*;
    use super::*;
    use std::fmt::Write as _;

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

    #[test]
    fn ordinary_code_is_left_alone() {
        assert!(DECOYS.len() >= 15);
        let failures: Vec<String> = DECOYS
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
    fn an_element_text_is_a_value_up_to_its_length_bound() {
        let at_bound = "k9Xq".repeat(ELEMENT_TEXT_MAX / 4);
        let text = format!("<password>{at_bound}</password>\n");
        assert_eq!(
            redact(&text).0,
            "<password>[redacted:password]</password>\n"
        );
        let longer = format!("{at_bound}z");
        let text = format!("<password>{longer}</password>\n");
        assert_eq!(redact(&text), (text.clone(), vec![]));
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
