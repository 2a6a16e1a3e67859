//! Fill in the middle as model servers take it. `FimMode` says how a provider is asked for the
//! text at a cursor: the `suffix` field (OpenAI-style `/v1/completions`, Ollama `/api/generate`),
//! llama.cpp's `/infill`, a raw prompt in the model's own FIM tokens (`Template`: the built-in
//! Qwen2.5-Coder, DeepSeek-Coder, StarCoder2, CodeLlama and Codestral ones, found by name or from
//! the model's name, or the user's own), the prefix alone, or a chat prompt that marks the cursor.
//! `Plan::for_provider` resolves a provider's settings into one of those; `neutralise` removes FIM
//! control tokens from the user's text, so a file that contains `<|fim_middle|>` cannot end its
//! prefix early or stop the model.
//!
//! Pure text: it renders parts the redactor has already seen (a `Prompt`'s) and adds the template's
//! tokens after. It never sends, routes or redacts; the wire format decides the request's shape.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::config::{ProviderConfig, ProviderKind};

/// How a provider is asked to fill in the middle (`fim` in a provider's config).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FimMode {
    /// Chosen from the provider: Anthropic → `chat`; a model name with a known template (or a
    /// `fim_template`) → `template`; otherwise `suffix`.
    #[default]
    Auto,
    /// The prefix as `prompt` and the suffix as `suffix` (the server applies its own template).
    Suffix,
    /// llama.cpp's `/infill` (`input_prefix`, `input_suffix`).
    Infill,
    /// A raw prompt in the model's FIM tokens, sent as a plain completion.
    Template,
    /// Only the text before the cursor, as a plain completion.
    Prefix,
    /// A chat prompt with the cursor marked, for chat-only models.
    Chat,
}

impl FimMode {
    pub const NAMES: [&'static str; 6] = ["auto", "suffix", "infill", "template", "prefix", "chat"];

    pub fn as_str(self) -> &'static str {
        match self {
            FimMode::Auto => "auto",
            FimMode::Suffix => "suffix",
            FimMode::Infill => "infill",
            FimMode::Template => "template",
            FimMode::Prefix => "prefix",
            FimMode::Chat => "chat",
        }
    }

    fn parse(word: &str) -> Option<FimMode> {
        Self::NAMES
            .iter()
            .position(|n| *n == word)
            .map(|i| match i {
                0 => FimMode::Auto,
                1 => FimMode::Suffix,
                2 => FimMode::Infill,
                3 => FimMode::Template,
                4 => FimMode::Prefix,
                _ => FimMode::Chat,
            })
    }
}

impl Serialize for FimMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A mode by name; `true` and `false` (the setting's old form) mean `suffix` and `chat`.
impl<'de> Deserialize<'de> for FimMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FimMode, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Name(String),
        }
        let wrong =
            || serde::de::Error::custom(format!("must be one of {}", FimMode::NAMES.join(", ")));
        match Raw::deserialize(d).map_err(|_| wrong())? {
            Raw::Flag(true) => Ok(FimMode::Suffix),
            Raw::Flag(false) => Ok(FimMode::Chat),
            Raw::Name(name) => FimMode::parse(&name).ok_or_else(wrong),
        }
    }
}

/// A raw FIM prompt: text with `{prefix}` and `{suffix}` where the two go, and the sequences that
/// end an answer (the model's end-of-text and FIM tokens).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub name: String,
    pub text: String,
    pub stop: Vec<String>,
}

/// The built-in templates, as each model's publisher documents them: (name, template, stops).
const BUILT_IN: [(&str, &str, &[&str]); 5] = [
    // Qwen2.5-Coder model card and examples; stops: its end-of-text, chat end and FIM tokens.
    (
        "qwen",
        "<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>",
        &[
            "<|endoftext|>",
            "<|im_end|>",
            "<|fim_prefix|>",
            "<|fim_middle|>",
            "<|fim_suffix|>",
            "<|fim_pad|>",
            "<|repo_name|>",
            "<|file_sep|>",
        ],
    ),
    // DeepSeek-Coder README ("Code Insertion"); the bars are U+FF5C, the underscore U+2581.
    (
        "deepseek",
        "<\u{ff5c}fim\u{2581}begin\u{ff5c}>{prefix}<\u{ff5c}fim\u{2581}hole\u{ff5c}>{suffix}<\u{ff5c}fim\u{2581}end\u{ff5c}>",
        &[
            "<\u{ff5c}end\u{2581}of\u{2581}sentence\u{ff5c}>",
            "<\u{ff5c}fim\u{2581}begin\u{ff5c}>",
            "<\u{ff5c}fim\u{2581}hole\u{ff5c}>",
            "<\u{ff5c}fim\u{2581}end\u{ff5c}>",
            "<|EOT|>",
        ],
    ),
    // StarCoder2 (BigCode): prefix-suffix-middle with its FIM tokens.
    (
        "starcoder",
        "<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>",
        &[
            "<|endoftext|>",
            "<fim_prefix>",
            "<fim_suffix>",
            "<fim_middle>",
            "<file_sep>",
            "<repo_name>",
        ],
    ),
    // Code Llama's reference `infilling_prompt_tokens`: "<PRE> {pre} <SUF>{suf} <MID>".
    (
        "codellama",
        "<PRE> {prefix} <SUF>{suffix} <MID>",
        &["<EOT>", "</s>", "<PRE>", "<SUF>", "<MID>"],
    ),
    // mistral-common's `encode_fim`: [SUFFIX] suffix [PREFIX] prefix (BOS added by the server).
    (
        "codestral",
        "[SUFFIX]{suffix}[PREFIX]{prefix}",
        &["</s>", "[PREFIX]", "[SUFFIX]", "[MIDDLE]"],
    ),
];

/// FIM control tokens of every built-in template, removed from the user's text whatever the
/// model: they are never code a model needs to see, and some server may read them as tokens.
const CONTROL: [&str; 24] = [
    "<|fim_prefix|>",
    "<|fim_suffix|>",
    "<|fim_middle|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<|endoftext|>",
    "<\u{ff5c}fim\u{2581}begin\u{ff5c}>",
    "<\u{ff5c}fim\u{2581}hole\u{ff5c}>",
    "<\u{ff5c}fim\u{2581}end\u{ff5c}>",
    "<\u{ff5c}end\u{2581}of\u{2581}sentence\u{ff5c}>",
    "<fim_prefix>",
    "<fim_suffix>",
    "<fim_middle>",
    "<fim_pad>",
    "<file_sep>",
    "<repo_name>",
    "<PRE>",
    "<SUF>",
    "<MID>",
    "<EOT>",
    "[PREFIX]",
    "[SUFFIX]",
    "[MIDDLE]",
];

/// The built-in templates' names, for messages and docs.
pub fn built_in_names() -> Vec<&'static str> {
    BUILT_IN.iter().map(|(n, _, _)| *n).collect()
}

impl Template {
    fn built_in(name: &str) -> Option<Template> {
        BUILT_IN
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(name, text, stop)| Template {
                name: (*name).to_owned(),
                text: (*text).to_owned(),
                stop: stop.iter().map(|s| (*s).to_owned()).collect(),
            })
    }

    /// The built-in template a model's name calls for (`qwen2.5-coder:7b` → qwen), if any.
    pub fn for_model(model: &str) -> Option<Template> {
        let m = model.to_ascii_lowercase();
        let name = if m.contains("codestral") {
            "codestral"
        } else if m.contains("codellama") || m.contains("code-llama") || m.contains("code_llama") {
            "codellama"
        } else if m.contains("starcoder") {
            "starcoder"
        } else if m.contains("deepseek") && m.contains("coder") {
            "deepseek"
        } else if m.contains("qwen") && m.contains("coder") {
            "qwen"
        } else {
            return None;
        };
        Template::built_in(name)
    }

    /// A `fim_template` setting: a built-in's name (or a model name that calls for one), or a
    /// template of one's own holding `{prefix}` and `{suffix}` once each, with `stop` as its stops.
    pub fn from_setting(setting: &str, stop: &[String]) -> Result<Template, String> {
        if setting.contains("{prefix}") || setting.contains("{suffix}") {
            if setting.matches("{prefix}").count() != 1 || setting.matches("{suffix}").count() != 1
            {
                return Err(
                    "a template of your own must hold {prefix} and {suffix} once each".to_owned(),
                );
            }
            return Ok(Template {
                name: "custom".to_owned(),
                text: setting.to_owned(),
                stop: stop.to_vec(),
            });
        }
        let mut template = Template::built_in(setting)
            .or_else(|| Template::for_model(setting))
            .ok_or_else(|| {
                format!(
                    "must be one of {}, or a template holding {{prefix}} and {{suffix}}",
                    built_in_names().join(", ")
                )
            })?;
        for s in stop {
            if !template.stop.contains(s) {
                template.stop.push(s.clone());
            }
        }
        Ok(template)
    }

    /// The raw prompt: the template with both parts in place (each put in once, so text in a
    /// part that looks like a placeholder stays as it is).
    pub fn render(&self, prefix: &str, suffix: &str) -> String {
        let mut out = String::with_capacity(self.text.len() + prefix.len() + suffix.len());
        let mut rest = self.text.as_str();
        while let Some(at) = rest.find('{') {
            let (before, from) = rest.split_at(at);
            out.push_str(before);
            if let Some(after) = from.strip_prefix("{prefix}") {
                out.push_str(prefix);
                rest = after;
            } else if let Some(after) = from.strip_prefix("{suffix}") {
                out.push_str(suffix);
                rest = after;
            } else {
                out.push('{');
                rest = &from[1..];
            }
        }
        out.push_str(rest);
        out
    }

    /// The template's own tokens: the text around its placeholders, trimmed.
    fn literals(&self) -> Vec<String> {
        self.text
            .split("{prefix}")
            .flat_map(|p| p.split("{suffix}"))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// What one provider is sent for a fill-in-the-middle prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Suffix,
    Infill,
    Template(Template),
    Prefix,
    Chat,
}

impl Plan {
    /// The provider's settings resolved: Anthropic has only chat; `/infill` is llama.cpp's (an
    /// OpenAI-compatible server), so Ollama is asked with `suffix` instead; a template comes
    /// from `fim_template`, else from the model's name, else the prefix alone is sent.
    pub fn for_provider(provider: &ProviderConfig) -> Plan {
        if provider.kind == ProviderKind::Anthropic {
            return Plan::Chat;
        }
        let template = || match &provider.fim_template {
            Some(setting) => Template::from_setting(setting, &provider.fim_stop).ok(),
            None => Template::for_model(&provider.model),
        };
        match provider.fim {
            FimMode::Auto => match provider.fim_template.as_ref().and(template()) {
                Some(t) => Plan::Template(t),
                None if provider.kind == ProviderKind::Openai => {
                    template().map_or(Plan::Suffix, Plan::Template)
                }
                None => Plan::Suffix,
            },
            FimMode::Suffix => Plan::Suffix,
            FimMode::Infill if provider.kind == ProviderKind::Openai => Plan::Infill,
            FimMode::Infill => Plan::Suffix,
            FimMode::Template => template().map_or(Plan::Prefix, Plan::Template),
            FimMode::Prefix => Plan::Prefix,
            FimMode::Chat => Plan::Chat,
        }
    }

    /// Text that must not reach the model inside the user's parts: every FIM control token, the
    /// template's own tokens and stops, and for chat the cursor marker.
    pub fn reserved(&self, cursor_marker: &str) -> Vec<String> {
        let mut out: Vec<String> = CONTROL.iter().map(|t| (*t).to_owned()).collect();
        match self {
            Plan::Template(t) => {
                out.extend(t.literals());
                // A stop that is a token (not a line break the user chose) is one too.
                out.extend(t.stop.iter().filter(|s| looks_like_token(s)).cloned());
            }
            Plan::Chat => out.push(cursor_marker.to_owned()),
            _ => {}
        }
        out.sort();
        out.dedup();
        out
    }
}

/// A stop sequence made of a bracketed word (`</s>`, `<|EOT|>`, `[MIDDLE]`), not of whitespace.
fn looks_like_token(s: &str) -> bool {
    let s = s.trim();
    s.len() >= 3
        && ((s.starts_with('<') && s.ends_with('>')) || (s.starts_with('[') && s.ends_with(']')))
}

/// `prefix` and `suffix` with every `reserved` text removed, as one text (so a token the cursor
/// splits is found too), until none is left (removing one cannot make another); the cursor
/// stays between the same characters. `None` when there was nothing to remove.
pub fn neutralise(prefix: &str, suffix: &str, reserved: &[String]) -> Option<(String, String)> {
    let mut text = format!("{prefix}{suffix}");
    let mut cursor = prefix.len();
    let mut changed = false;
    loop {
        let found = reserved
            .iter()
            .filter(|r| !r.is_empty())
            .filter_map(|r| text.find(r.as_str()).map(|at| (at, r.len())))
            .min();
        let Some((at, len)) = found else { break };
        text.replace_range(at..at + len, "");
        if cursor > at {
            cursor = if cursor >= at + len { cursor - len } else { at };
        }
        changed = true;
    }
    changed.then(|| (text[..cursor].to_owned(), text[cursor..].to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(kind: ProviderKind, model: &str) -> ProviderConfig {
        let mut p = ProviderConfig::ollama("http://127.0.0.1:8080/v1", model);
        p.kind = kind;
        p
    }

    #[test]
    fn each_built_in_renders_as_its_model_documents() {
        let cases = [
            ("qwen", "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>"),
            (
                "deepseek",
                "<\u{ff5c}fim\u{2581}begin\u{ff5c}>a<\u{ff5c}fim\u{2581}hole\u{ff5c}>b<\u{ff5c}fim\u{2581}end\u{ff5c}>",
            ),
            ("starcoder", "<fim_prefix>a<fim_suffix>b<fim_middle>"),
            ("codellama", "<PRE> a <SUF>b <MID>"),
            ("codestral", "[SUFFIX]b[PREFIX]a"),
        ];
        for (name, rendered) in cases {
            let t = Template::built_in(name).unwrap();
            assert_eq!(t.render("a", "b"), rendered, "{name}");
            assert!(!t.stop.is_empty());
        }
        // The DeepSeek tokens are full-width bars around a lower one-eighth block, not ASCII.
        let deepseek = Template::built_in("deepseek").unwrap();
        assert!(deepseek.text.starts_with("<｜fim▁begin｜>"));
        assert!(!deepseek.text.contains("<|fim"));
        // A part that looks like a placeholder is not expanded again.
        let qwen = Template::built_in("qwen").unwrap();
        assert_eq!(
            qwen.render("x{suffix}", "{prefix}"),
            "<|fim_prefix|>x{suffix}<|fim_suffix|>{prefix}<|fim_middle|>"
        );
    }

    #[test]
    fn templates_come_from_the_model_name_or_the_setting() {
        for (model, name) in [
            ("qwen2.5-coder:7b", Some("qwen")),
            ("Qwen/Qwen2.5-Coder-1.5B", Some("qwen")),
            ("deepseek-coder-6.7b-base", Some("deepseek")),
            ("bigcode/starcoder2-3b", Some("starcoder")),
            ("codellama:7b-code", Some("codellama")),
            ("CodeLlama-13b-hf", Some("codellama")),
            ("codestral-latest", Some("codestral")),
            ("qwen2.5:7b", None),
            ("llama3.1", None),
        ] {
            assert_eq!(
                Template::for_model(model).map(|t| t.name),
                name.map(str::to_owned),
                "{model}"
            );
        }
        let own =
            Template::from_setting("<fill>{prefix}<hole>{suffix}<mid>", &["<end>".into()]).unwrap();
        assert_eq!(own.render("a", "b"), "<fill>a<hole>b<mid>");
        assert_eq!(own.stop, ["<end>"]);
        assert_eq!(own.literals(), ["<fill>", "<hole>", "<mid>"]);
        assert!(Template::from_setting("{prefix}{prefix}{suffix}", &[]).is_err());
        assert!(Template::from_setting("{prefix}", &[]).is_err());
        let err = Template::from_setting("gpt", &[]).unwrap_err();
        assert!(
            err.contains("qwen, deepseek, starcoder, codellama, codestral"),
            "{err}"
        );
        // A built-in by a model name, with extra stops added.
        let t = Template::from_setting("qwen2.5-coder", &["\n\n".into()]).unwrap();
        assert_eq!(t.name, "qwen");
        assert!(t.stop.contains(&"\n\n".to_owned()));
    }

    #[test]
    fn plans_per_provider() {
        use FimMode::*;
        let plan = |kind, model: &str, mode, template: Option<&str>| {
            let mut p = provider(kind, model);
            p.fim = mode;
            p.fim_template = template.map(str::to_owned);
            match Plan::for_provider(&p) {
                Plan::Template(t) => format!("template:{}", t.name),
                other => format!("{other:?}").to_lowercase(),
            }
        };
        let (openai, ollama, anthropic) = (
            ProviderKind::Openai,
            ProviderKind::Ollama,
            ProviderKind::Anthropic,
        );
        assert_eq!(
            plan(openai, "qwen2.5-coder-7b", Auto, None),
            "template:qwen"
        );
        assert_eq!(plan(openai, "my-model", Auto, None), "suffix");
        assert_eq!(plan(ollama, "qwen2.5-coder:7b", Auto, None), "suffix");
        assert_eq!(
            plan(ollama, "x", Auto, Some("starcoder")),
            "template:starcoder"
        );
        assert_eq!(plan(anthropic, "claude", Template, Some("qwen")), "chat");
        assert_eq!(plan(openai, "deepseek-coder", Infill, None), "infill");
        assert_eq!(plan(ollama, "deepseek-coder", Infill, None), "suffix");
        assert_eq!(plan(openai, "unknown", Template, None), "prefix");
        assert_eq!(plan(openai, "qwen2.5-coder", Prefix, None), "prefix");
        assert_eq!(plan(openai, "qwen2.5-coder", Chat, None), "chat");
        assert_eq!(plan(openai, "qwen2.5-coder", Suffix, None), "suffix");
    }

    #[test]
    fn the_users_text_cannot_hold_a_fim_token() {
        let plan = Plan::Template(Template::built_in("qwen").unwrap());
        let reserved = plan.reserved("<CURSOR>");
        let (p, s) = neutralise(
            "let a = \"<|fim_middle|>\";\n<|fim_<|fim_suffix|>suffix|>x",
            "y<|endoftext|> // [SUFFIX]",
            &reserved,
        )
        .unwrap();
        assert_eq!((p.as_str(), s.as_str()), ("let a = \"\";\nx", "y // "));
        // A token the cursor splits is found too; the cursor keeps its place in the text.
        let (p, s) = neutralise("a<|fim_mid", "dle|>b", &reserved).unwrap();
        assert_eq!((p.as_str(), s.as_str()), ("a", "b"));
        assert_eq!(neutralise("plain", "text", &reserved), None);
        // The chat marker is reserved only for chat; full-width DeepSeek tokens always.
        assert!(
            Plan::Chat
                .reserved("<CURSOR>")
                .contains(&"<CURSOR>".to_owned())
        );
        assert!(
            !Plan::Suffix
                .reserved("<CURSOR>")
                .contains(&"<CURSOR>".to_owned())
        );
        let (p, _) =
            neutralise("x<｜fim▁hole｜>y", "", &Plan::Suffix.reserved("<CURSOR>")).unwrap();
        assert_eq!(p, "xy");
        // A custom template's own tokens and token-like stops are reserved; line breaks are not.
        let own = Plan::Template(
            Template::from_setting(
                "<A>{prefix}<B>{suffix}<C>",
                &["<END>".into(), "\n\n".into()],
            )
            .unwrap(),
        );
        let reserved = own.reserved("<CURSOR>");
        assert!(reserved.contains(&"<A>".to_owned()) && reserved.contains(&"<END>".to_owned()));
        assert!(!reserved.contains(&"\n\n".to_owned()));
    }

    #[test]
    fn modes_read_their_names_and_the_old_flags() {
        let read = |v: &str| {
            toml::from_str::<toml::Table>(&format!("fim = {v}")).unwrap()["fim"]
                .clone()
                .try_into::<FimMode>()
        };
        assert_eq!(read("\"infill\"").unwrap(), FimMode::Infill);
        assert_eq!(read("true").unwrap(), FimMode::Suffix);
        assert_eq!(read("false").unwrap(), FimMode::Chat);
        assert!(
            read("\"raw\"")
                .unwrap_err()
                .to_string()
                .contains("auto, suffix")
        );
    }
}
