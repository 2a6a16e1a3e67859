//! `Prompt`: what a model is asked, and the only thing the gateway sends. Redaction by
//! construction: every constructor runs the redactor (`crate::context::redact`) over every part
//! it is given — system text, each message (template text, target code, tiers, question, chat
//! history, workflow step outputs all arrive here as parts of those), and a fill-in-the-middle
//! prefix and suffix — so no code path can put unredacted text in front of a model. Deserialising
//! goes through the same constructor.
//!
//! It never does I/O and never keeps what it removed.

use serde::{Deserialize, Deserializer, Serialize};

use crate::context::redact;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One turn of a conversation, as handed to [`Prompt::conversation`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Message {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Message {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// The parts of a prompt, read by the wire formats. Only a [`Prompt`] reaches the gateway, and a
/// `Prompt` holds only redacted parts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Parts {
    Chat {
        system: Option<String>,
        messages: Vec<Message>,
    },
    /// Fill in the middle: the answer goes between `prefix` and `suffix`.
    Fim { prefix: String, suffix: String },
}

/// A prompt whose every part has passed the redactor.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Prompt {
    parts: Parts,
    /// Secrets replaced while building it.
    #[serde(skip)]
    redactions: usize,
}

impl Prompt {
    /// A system text and one user message.
    pub fn chat(system: Option<&str>, user: impl Into<String>) -> Prompt {
        Prompt::conversation(system, vec![Message::user(user)])
    }

    /// A system text and a conversation.
    pub fn conversation(system: Option<&str>, messages: Vec<Message>) -> Prompt {
        Prompt::from(Parts::Chat {
            system: system.map(str::to_owned),
            messages,
        })
    }

    /// Fill in the middle between `prefix` and `suffix`. The two are redacted as one text, so a
    /// secret the cursor splits is still found; its replacement goes into the prefix.
    pub fn fim(prefix: &str, suffix: &str) -> Prompt {
        let whole = format!("{prefix}{suffix}");
        let (redacted, found) = redact(&whole);
        // Where the cursor lands in the redacted text: after every replacement that starts
        // before it (one the cursor splits included).
        let mut cursor = prefix.len() as isize;
        for r in &found {
            if r.start >= prefix.len() {
                break;
            }
            let marker = crate::context::REDACTED.len() + r.kind.len() + 1;
            let removed = r.end - r.start;
            if r.end > prefix.len() {
                cursor = r.start as isize + marker as isize;
            } else {
                cursor += marker as isize - removed as isize;
            }
        }
        let cursor = (cursor.max(0) as usize).min(redacted.len());
        Prompt {
            parts: Parts::Fim {
                prefix: redacted[..cursor].to_owned(),
                suffix: redacted[cursor..].to_owned(),
            },
            redactions: found.len(),
        }
    }

    /// The redacted parts, for the wire formats and for showing the user what is sent.
    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    /// How many secrets were replaced while building it.
    pub fn redactions(&self) -> usize {
        self.redactions
    }

    /// Bytes of prompt text, for estimates and the audit.
    pub fn len(&self) -> usize {
        match &self.parts {
            Parts::Chat { system, messages } => {
                system.as_ref().map_or(0, String::len)
                    + messages.iter().map(|m| m.content.len()).sum::<usize>()
            }
            Parts::Fim { prefix, suffix } => prefix.len() + suffix.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The prompt as plain text, exactly as its parts go out: what `strata context --agent` and
    /// `strata/context` show.
    pub fn transcript(&self) -> String {
        match &self.parts {
            Parts::Chat { system, messages } => {
                let mut out = String::new();
                if let Some(system) = system {
                    out.push_str("=== system ===\n");
                    out.push_str(system);
                    out.push('\n');
                }
                for m in messages {
                    out.push_str(match m.role {
                        Role::User => "=== user ===\n",
                        Role::Assistant => "=== assistant ===\n",
                    });
                    out.push_str(&m.content);
                    out.push('\n');
                }
                out
            }
            Parts::Fim { prefix, suffix } => {
                format!("=== prefix ===\n{prefix}\n=== suffix ===\n{suffix}\n")
            }
        }
    }
}

/// Every way of making a `Prompt` ends here: each part through the redactor.
impl From<Parts> for Prompt {
    fn from(parts: Parts) -> Prompt {
        let mut redactions = 0;
        let mut clean = |text: String| {
            let (out, found) = redact(&text);
            redactions += found.len();
            out
        };
        match parts {
            Parts::Chat { system, messages } => {
                let system = system.map(&mut clean);
                let messages = messages
                    .into_iter()
                    .map(|m| Message {
                        role: m.role,
                        content: clean(m.content),
                    })
                    .collect();
                Prompt {
                    parts: Parts::Chat { system, messages },
                    redactions,
                }
            }
            Parts::Fim { prefix, suffix } => Prompt::fim(&prefix, &suffix),
        }
    }
}

impl<'de> Deserialize<'de> for Prompt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Prompt, D::Error> {
        Parts::deserialize(deserializer).map(Prompt::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AKIAIOSFODNN7EXAMPLF";
    const GITHUB: &str = "ghp_FAKEfake0123456789FAKEfake0123456789";

    fn texts(prompt: &Prompt) -> Vec<String> {
        match prompt.parts() {
            Parts::Chat { system, messages } => system
                .iter()
                .cloned()
                .chain(messages.iter().map(|m| m.content.clone()))
                .collect(),
            Parts::Fim { prefix, suffix } => vec![prefix.clone(), suffix.clone()],
        }
    }

    #[test]
    fn every_part_of_a_chat_is_redacted() {
        let prompt = Prompt::conversation(
            Some(&format!("system with token = \"{GITHUB}\"")),
            vec![
                Message::user(format!("let key = \"{KEY}\";")),
                Message::assistant(format!("the key is {GITHUB}")),
                Message::user("and a hash 3f786850e387550fdab836ed7e6dc881de23001b"),
            ],
        );
        let all = texts(&prompt).join("\n");
        assert!(!all.contains(KEY) && !all.contains(GITHUB), "{all}");
        assert!(all.contains("3f786850e387550fdab836ed7e6dc881de23001b"));
        assert_eq!(prompt.redactions(), 3);
    }

    #[test]
    fn a_secret_the_cursor_splits_is_still_found() {
        let text = format!("const KEY: &str = \"{KEY}\";\nfn main() {{}}\n");
        for cut in 0..=text.len() {
            let prompt = Prompt::fim(&text[..cut], &text[cut..]);
            let Parts::Fim { prefix, suffix } = prompt.parts() else {
                unreachable!()
            };
            let both = format!("{prefix}{suffix}");
            assert!(!both.contains(&KEY[..12]), "cut at {cut}: {both}");
            assert!(!prefix.contains(&KEY[4..]) && !suffix.contains(&KEY[..8]));
            assert_eq!(
                both,
                format!("const KEY: &str = \"[redacted:aws-access-key-id]\";\nfn main() {{}}\n")
            );
            // Text on either side of the secret stays on its side of the cursor.
            if cut <= 19 {
                assert_eq!(prefix, &text[..cut], "cut at {cut}");
            }
            if cut >= 19 + KEY.len() {
                assert_eq!(suffix, &text[cut..], "cut at {cut}");
            }
        }
    }

    #[test]
    fn a_deserialised_prompt_is_redacted_too() {
        let json = format!(
            r#"{{"kind":"chat","system":null,"messages":[{{"role":"user","content":"key {KEY}"}}]}}"#
        );
        let prompt: Prompt = serde_json::from_str(&json).unwrap();
        assert!(!texts(&prompt).concat().contains(KEY));
        let json = format!(r#"{{"kind":"fim","prefix":"k = \"{KEY}","suffix":"\""}}"#);
        let prompt: Prompt = serde_json::from_str(&json).unwrap();
        assert!(!texts(&prompt).concat().contains(KEY));
    }

    #[test]
    fn redacting_is_idempotent_so_redacted_parts_pass_unchanged() {
        let once = Prompt::chat(None, format!("password = \"hunter2hunter2\" and {KEY}"));
        let twice = Prompt::chat(None, texts(&once)[0].clone());
        assert_eq!(texts(&once), texts(&twice));
        assert_eq!(twice.redactions(), 0);
    }
}
