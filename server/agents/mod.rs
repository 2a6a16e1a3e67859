//! Agents: what each one asks a model, over which context, and what becomes of the answer. The
//! built-ins (explain, document, fix, tests, refactor, review, chat, summarize) can be overridden
//! and new ones declared with `[agents.NAME]` in the user's or the repository's config. This
//! module is pure: it renders prompts from a context pack and cleans answers; running an agent
//! (the gateway, the editor) happens at the edges.

#[cfg(test)]
mod answer_tests;
pub mod history;
pub mod workflow;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::context::ContextPack;
use crate::llm::config::AgentConfig;
use crate::llm::{CallRequest, Config, Priority, Prompt};

/// What an agent's answer becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    /// An edit of the target: replacing it, or inserting after it.
    Edit,
    /// A markdown answer opened beside the code.
    Document,
    /// Findings published as diagnostics.
    Diagnostics,
    /// A turn appended to a chat file.
    Chat,
}

impl Output {
    fn parse(name: &str) -> Option<Output> {
        Some(match name {
            "edit" => Output::Edit,
            "document" => Output::Document,
            "diagnostics" => Output::Diagnostics,
            "chat" => Output::Chat,
            _ => return None,
        })
    }
}

/// Where an edit goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    Replace,
    InsertAfter,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Agent {
    pub name: String,
    /// Shown as the code action.
    pub title: String,
    pub output: Output,
    pub placement: Placement,
    pub system: String,
    /// The user message; `{{context}}`, `{{selection}}`, `{{question}}`, `{{language}}`,
    /// `{{path}}` and `{{diagnostics}}` are replaced.
    pub prompt: String,
    /// Changes when the template does (cache keys include it).
    pub version: String,
    pub route: Option<String>,
    pub cache_ttl: Option<Duration>,
    /// Its own tier budgets, `[immediate, working, background]`, over the configuration's
    /// `[context]` (see `crate::context::Budgets::resolve`); a tier left `None` is not its own.
    pub budgets: Option<[Option<u32>; 3]>,
    pub max_tokens: u32,
    pub temperature: f32,
    /// Offered only when the editor reports diagnostics at the cursor (fix).
    pub needs_diagnostics: bool,
    /// Offered as a code action (chat and summarize are not).
    pub in_code_actions: bool,
    pub postprocess: Post,
}

/// What is taken from an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Post {
    /// What the output kind needs: the first code block for edits, everything for the rest.
    Default,
    /// The first fenced code block (`postprocess = "first-code-block"`).
    FirstCodeBlock,
    /// The whole answer, trimmed (`postprocess = "none"`).
    Whole,
}

const EDIT_RULES: &str = "Reply with exactly one fenced code block holding the code, and nothing \
after it. Keep the code's indentation. Do not invent APIs that the context does not show.";

fn builtin(
    name: &str,
    title: &str,
    output: Output,
    placement: Placement,
    system: &str,
    prompt: &str,
) -> Agent {
    Agent {
        name: name.to_owned(),
        title: title.to_owned(),
        output,
        placement,
        system: system.to_owned(),
        prompt: prompt.to_owned(),
        version: "1".to_owned(),
        route: None,
        cache_ttl: None,
        budgets: None,
        max_tokens: 2048,
        temperature: 0.2,
        needs_diagnostics: false,
        in_code_actions: true,
        postprocess: Post::Default,
    }
}

/// The built-in agents.
pub fn builtins() -> Vec<Agent> {
    let coder = "You are a careful senior engineer working inside the user's editor. You see \
                 the code around the user's selection, the definitions it uses and an outline of \
                 the workspace.";
    let mut agents = vec![
        builtin(
            "explain",
            "Strata: Explain this code",
            Output::Document,
            Placement::Replace,
            coder,
            "{{context}}\n\nExplain what this {{language}} code from {{path}} does, how it fits \
             the code around it, and anything surprising about it. Answer in Markdown.\n\n\
             ```\n{{selection}}\n```\n\n{{question}}",
        ),
        builtin(
            "document",
            "Strata: Write documentation comments",
            Output::Edit,
            Placement::Replace,
            coder,
            &format!(
                "{{{{context}}}}\n\nAdd or improve the documentation comments of this {{{{language}}}} \
                 code from {{{{path}}}}, in the language's own doc-comment style. Change nothing \
                 else. {EDIT_RULES} The block replaces the code below.\n\n```\n{{{{selection}}}}\n```\n\n\
                 {{{{question}}}}"
            ),
        ),
        builtin(
            "fix",
            "Strata: Fix these problems",
            Output::Edit,
            Placement::Replace,
            coder,
            &format!(
                "{{{{context}}}}\n\nFix these problems in the {{{{language}}}} code below from \
                 {{{{path}}}}:\n{{{{diagnostics}}}}\n\nChange as little as needed. {EDIT_RULES} The \
                 block replaces the code below.\n\n```\n{{{{selection}}}}\n```\n\n{{{{question}}}}"
            ),
        ),
        builtin(
            "tests",
            "Strata: Write tests",
            Output::Edit,
            Placement::InsertAfter,
            coder,
            &format!(
                "{{{{context}}}}\n\nWrite unit tests for the {{{{language}}}} code below from \
                 {{{{path}}}}, in the style the project already uses. {EDIT_RULES} The block is \
                 inserted after the code below.\n\n```\n{{{{selection}}}}\n```\n\n{{{{question}}}}"
            ),
        ),
        builtin(
            "refactor",
            "Strata: Refactor for clarity",
            Output::Edit,
            Placement::Replace,
            coder,
            &format!(
                "{{{{context}}}}\n\nRefactor the {{{{language}}}} code below from {{{{path}}}} for \
                 clarity without changing its behaviour or its public signature. {EDIT_RULES} The \
                 block replaces the code below.\n\n```\n{{{{selection}}}}\n```\n\n{{{{question}}}}"
            ),
        ),
        builtin(
            "review",
            "Strata: Review this code",
            Output::Diagnostics,
            Placement::Replace,
            coder,
            "{{context}}\n\nReview the {{language}} code below from {{path}} for bugs, security \
             problems and performance problems. Report each finding as one JSON object per \
             line, with no other text: {\"line\": <1-based line within the code below>, \
             \"severity\": \"error\" | \"warning\" | \"information\", \"message\": \"...\", \
             \"suggestion\": \"<the corrected line, optional>\"}. Report nothing if you find \
             nothing.\n\n```\n{{selection}}\n```\n\n{{question}}",
        ),
        builtin(
            "chat",
            "Strata: Chat",
            Output::Chat,
            Placement::Replace,
            coder,
            "{{context}}\n\n{{question}}",
        ),
        builtin(
            "summarize",
            "Strata: Summarize",
            Output::Document,
            Placement::Replace,
            "You write short, factual summaries.",
            "Summarize this conversation in at most 10 bullet points, keeping every decision, \
             name and open question.\n\n{{context}}\n\n{{question}}",
        ),
    ];
    for (name, focus) in [
        (
            "review-security",
            "security problems: injection, unchecked input, secrets, unsafe code, authorisation",
        ),
        (
            "review-performance",
            "performance problems: needless allocation or copying, quadratic loops, blocking calls on hot paths",
        ),
        (
            "review-style",
            "readability and style problems: naming, structure, comments that lie, dead code",
        ),
    ] {
        agents.push(builtin(
            name,
            &format!("Strata: {name}"),
            Output::Document,
            Placement::Replace,
            coder,
            &format!(
                "{{{{context}}}}\n\nList the {focus} in the {{{{language}}}} code below from \
                 {{{{path}}}}, most serious first, as a Markdown list citing lines. Say \"none found\" \
                 if there are none.\n\n```\n{{{{selection}}}}\n```\n\n{{{{question}}}}"
            ),
        ));
    }
    agents.push(builtin(
        "review-summary",
        "Strata: review summary",
        Output::Document,
        Placement::Replace,
        "You merge code reviews into one clear, prioritised report.",
        "These reviews of {{path}} came from separate reviewers:\n\n{{steps}}\n\nMerge them \
         into one Markdown report: the findings most worth fixing first, duplicates merged, \
         each with the line it concerns.",
    ));
    for agent in &mut agents {
        if agent.name.starts_with("review-") {
            agent.in_code_actions = false;
        }
        match agent.name.as_str() {
            "fix" => agent.needs_diagnostics = true,
            "chat" | "summarize" => agent.in_code_actions = false,
            "explain" | "review" => agent.temperature = 0.1,
            _ => {}
        }
    }
    agents
}

/// The built-ins with the config's `[agents.*]` laid over them (an override keeps what it does
/// not set), plus the config's new agents; sorted by name.
pub fn declared(config: &Config) -> Vec<Agent> {
    let mut agents: BTreeMap<String, Agent> = builtins()
        .into_iter()
        .map(|a| (a.name.clone(), a))
        .collect();
    for (name, declared) in &config.agents {
        let base = agents.remove(name).unwrap_or_else(|| {
            builtin(
                name,
                &format!("Strata: {name}"),
                Output::Document,
                Placement::Replace,
                "You are a careful senior engineer working inside the user's editor.",
                "{{context}}\n\n```\n{{selection}}\n```\n\n{{question}}",
            )
        });
        agents.insert(name.clone(), overlay(base, declared));
    }
    agents.into_values().collect()
}

fn overlay(mut agent: Agent, config: &AgentConfig) -> Agent {
    if let Some(title) = &config.title {
        agent.title = title.clone();
    }
    if let Some(output) = config.output.as_deref().and_then(Output::parse) {
        agent.output = output;
    }
    if let Some(prompt) = &config.prompt {
        agent.prompt = prompt.clone();
    }
    if let Some(system) = &config.system {
        agent.system = system.clone();
    }
    if let Some(version) = &config.version {
        agent.version = version.clone();
    }
    if config.route.is_some() {
        agent.route = config.route.clone();
    }
    if let Some(ttl) = config.cache_ttl_secs {
        agent.cache_ttl = Some(Duration::from_secs(ttl));
    }
    if let Some(max) = config.max_tokens {
        agent.max_tokens = max;
    }
    if let Some(t) = config.temperature {
        agent.temperature = t;
    }
    if let Some(b) = &config.budgets {
        agent.budgets = Some(b.tiers());
    }
    match config.postprocess.as_deref() {
        Some("first-code-block") => agent.postprocess = Post::FirstCodeBlock,
        Some("none") => agent.postprocess = Post::Whole,
        _ => {}
    }
    if let Some(toml::Value::String(placement)) = config.extra.get("placement") {
        agent.placement = match placement.as_str() {
            "insert-after" => Placement::InsertAfter,
            _ => Placement::Replace,
        };
    }
    agent
}

/// What a prompt is rendered from.
#[derive(Clone, Debug, Default)]
pub struct Inputs<'a> {
    pub path: &'a str,
    pub language: &'a str,
    /// The code the agent works on.
    pub selection: &'a str,
    /// The rendered context pack.
    pub context: &'a str,
    pub question: Option<&'a str>,
    /// One line per problem the editor reports there.
    pub diagnostics: &'a [String],
    /// In a workflow, the outputs of the steps this one depends on.
    pub steps: &'a str,
}

/// The template with its placeholders replaced, in one pass (text inserted for one placeholder
/// is never scanned for another).
pub fn render(template: &str, inputs: &Inputs) -> String {
    let mut out =
        String::with_capacity(template.len() + inputs.context.len() + inputs.selection.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let diagnostics;
        let value = match after[..close].trim() {
            "context" => inputs.context,
            "selection" => inputs.selection,
            "question" => inputs.question.unwrap_or(""),
            "language" => inputs.language,
            "path" => inputs.path,
            "steps" => inputs.steps,
            "diagnostics" => {
                diagnostics = inputs
                    .diagnostics
                    .iter()
                    .map(|d| format!("- {d}"))
                    .collect::<Vec<_>>()
                    .join("\n");
                &diagnostics
            }
            _ => &rest[open..open + 2 + close + 2],
        };
        out.push_str(value);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out.trim_end().to_owned()
}

/// The chat prompt for `agent` over `inputs`.
pub fn prompt(agent: &Agent, inputs: &Inputs) -> Prompt {
    Prompt::chat(Some(&agent.system), render(&agent.prompt, inputs))
}

/// The gateway request for `agent` over `inputs`: its prompt, route, parameters, template
/// version and cache TTL, and — for the audit — the files and chunks of `pack` that go out.
pub fn call_request(
    agent: &Agent,
    inputs: &Inputs,
    pack: &ContextPack,
    priority: Priority,
) -> CallRequest {
    let mut request = CallRequest::new(&agent.name, priority, prompt(agent, inputs));
    request.route = agent.route.clone();
    request.params.max_tokens = agent.max_tokens;
    request.params.temperature = agent.temperature;
    request.template_version = template_version(agent);
    request.cache_ttl = agent.cache_ttl;
    if !inputs.path.is_empty() {
        request.files.push(inputs.path.to_owned());
    }
    for item in pack.tiers.iter().flat_map(|t| &t.items) {
        // Items from files (not labels such as `folders` or `conversation`) name what goes out.
        if (item.source.contains('/') || item.source.contains('.'))
            && !request.files.contains(&item.source)
        {
            request.files.push(item.source.clone());
        }
        request.chunks.extend(item.chunk_id.clone());
    }
    request
}

/// The version cache keys carry: the declared version and a hash of the template itself.
pub fn template_version(agent: &Agent) -> String {
    let hash =
        xxhash_rust::xxh3::xxh3_64(format!("{}\u{0}{}", agent.system, agent.prompt).as_bytes());
    format!("{}-{hash:016x}", agent.version)
}

/// The code of an edit answer: the first fenced code block. `None` when there is none or it is
/// empty — such an answer is not applied.
pub fn first_code_block(answer: &str) -> Option<String> {
    let start = answer.find("```")?;
    let after_fence = &answer[start + 3..];
    let body_start = after_fence.find('\n')? + 1;
    let body = &after_fence[body_start..];
    let end = body
        .find("\n```")
        .map(|e| e + 1)
        .or_else(|| body.rfind("```"))?;
    let code = body[..end].trim_end_matches('\n');
    (!code.trim().is_empty()).then(|| code.to_owned())
}

/// The code an edit agent's answer puts in the buffer; `None` when there is nothing to apply.
pub fn edit_text(agent: &Agent, answer: &str) -> Option<String> {
    match agent.postprocess {
        Post::Whole => {
            let text = answer.trim_matches('\n');
            (!text.trim().is_empty()).then(|| text.to_owned())
        }
        Post::Default | Post::FirstCodeBlock => first_code_block(answer),
    }
}

/// Puts the user's secrets back into an edit. The model saw the target with every secret replaced
/// by `[redacted:<kind>]`; an answer that keeps those markers gets, marker by marker, the secret
/// of that kind that stood in the same order in `original`. An answer with more markers of a kind
/// than `original` had secrets of it cannot be restored: applying it would write a marker over
/// the user's code, so it is refused with a message that says so.
pub fn restore_secrets(original: &str, code: &str) -> Result<String, String> {
    use crate::context::REDACTED as MARKER;
    if !code.contains(MARKER) {
        return Ok(code.to_owned());
    }
    let (_, found) = crate::context::redact(original);
    let mut unused: Vec<(&str, &str)> = found
        .iter()
        .map(|r| (r.kind, &original[r.start..r.end]))
        .collect();
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find(MARKER) {
        out.push_str(&rest[..at]);
        let after = &rest[at + MARKER.len()..];
        let Some(close) = after.find(']') else {
            out.push_str(&rest[at..]);
            rest = "";
            break;
        };
        let kind = &after[..close];
        let Some(i) = unused.iter().position(|(k, _)| *k == kind) else {
            return Err(format!(
                "the answer holds a redacted secret ({kind}) that was not in the code it \
                 replaces; it was not applied, so no secret is overwritten"
            ));
        };
        out.push_str(unused.remove(i).1);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The text a document agent's answer becomes.
pub fn document_text(agent: &Agent, answer: &str) -> String {
    match agent.postprocess {
        Post::FirstCodeBlock => first_code_block(answer).unwrap_or_else(|| answer.to_owned()),
        Post::Default | Post::Whole => answer.trim().to_owned(),
    }
}

/// One finding of a review.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct Finding {
    /// 1-based, within the reviewed code.
    pub line: u32,
    #[serde(default = "default_severity")]
    pub severity: String,
    pub message: String,
    #[serde(default)]
    pub suggestion: Option<String>,
}

fn default_severity() -> String {
    "warning".to_owned()
}

/// The findings in a review answer: one JSON object per line; other lines (prose, fences) are
/// skipped, and so are objects without a line or a message.
pub fn findings(answer: &str) -> Vec<Finding> {
    answer
        .lines()
        .filter_map(|l| serde_json::from_str::<Finding>(l.trim().trim_end_matches(',')).ok())
        .filter(|f| f.line > 0 && !f.message.trim().is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_edit_gets_the_users_secrets_back_in_order() {
        let original = "fn connect() {\n    let a = \"AKIAIOSFODNN7EXAMPLF\";\n    let b = \"AKIAJ777777777EXAMPL\";\n}\n";
        let (sent, _) = crate::context::redact(original);
        assert!(!sent.contains("AKIA"), "{sent}");
        let answer = format!("/// Connects.\n{sent}");
        assert_eq!(
            super::restore_secrets(original, &answer).unwrap(),
            format!("/// Connects.\n{original}")
        );
        // A marker the original did not have is refused, not written over the user's code.
        let extra = format!("{sent}// [redacted:github-token]\n");
        assert!(super::restore_secrets(original, &extra).is_err());
        // An answer without markers is taken as it is.
        assert_eq!(
            super::restore_secrets(original, "fn x() {}").unwrap(),
            "fn x() {}"
        );
    }

    use super::*;
    use crate::llm::ConfigBuilder;
    use crate::llm::Trust;

    #[test]
    fn templates_render_each_placeholder_once() {
        let inputs = Inputs {
            path: "src/a.rs",
            language: "rust",
            selection: "fn a() {{question}}",
            context: "CTX",
            question: Some("why?"),
            diagnostics: &["E0308 mismatched types".into()],
            steps: "",
        };
        assert_eq!(
            render(
                "{{context}}|{{selection}}|{{ question }}|{{diagnostics}}|{{nope}}|{{",
                &inputs
            ),
            "CTX|fn a() {{question}}|why?|- E0308 mismatched types|{{nope}}|{{"
        );
    }

    #[test]
    fn config_overrides_and_adds_agents() {
        let mut b = ConfigBuilder::new();
        b.text(
            "[agents.explain]\ntitle = \"Explain like the team\"\nversion = \"7\"\n\n\
             [agents.security]\ntitle = \"Security review\"\noutput = \"diagnostics\"\nprompt = \"Look: {{selection}}\"\n",
            "t.toml",
            Trust::User,
        );
        let agents = declared(&b.build());
        let explain = agents.iter().find(|a| a.name == "explain").unwrap();
        assert_eq!(explain.title, "Explain like the team");
        assert_eq!(explain.output, Output::Document, "kept from the built-in");
        assert!(template_version(explain).starts_with("7-"));
        let security = agents.iter().find(|a| a.name == "security").unwrap();
        assert_eq!(security.output, Output::Diagnostics);
        assert_eq!(security.prompt, "Look: {{selection}}");
        assert_eq!(agents.len(), builtins().len() + 1);
        assert!(
            builtins()
                .iter()
                .any(|a| a.name == "review-summary" && a.prompt.contains("{{steps}}"))
        );
        let before = template_version(&builtins()[0]);
        let mut changed = builtins()[0].clone();
        changed.prompt.push('!');
        assert_ne!(template_version(&changed), before);
    }

    #[test]
    fn postprocessing_is_declared() {
        let mut b = ConfigBuilder::new();
        b.text(
            "[agents.raw]\noutput = \"edit\"\npostprocess = \"none\"\n[agents.snippet]\npostprocess = \"first-code-block\"\n",
            "t.toml",
            Trust::User,
        );
        let agents = declared(&b.build());
        let raw = agents.iter().find(|a| a.name == "raw").unwrap();
        assert_eq!(
            edit_text(raw, "\nfn a() {}\n").as_deref(),
            Some("fn a() {}")
        );
        let snippet = agents.iter().find(|a| a.name == "snippet").unwrap();
        assert_eq!(document_text(snippet, "Use:\n```\nx()\n```"), "x()");
        let explain = agents.iter().find(|a| a.name == "explain").unwrap();
        assert_eq!(document_text(explain, " prose \n"), "prose");
    }

    #[test]
    fn the_first_code_block_is_the_edit() {
        assert_eq!(
            first_code_block("Here:\n```rust\n/// Doc.\nfn a() {}\n```\nDone.").as_deref(),
            Some("/// Doc.\nfn a() {}")
        );
        assert_eq!(
            first_code_block("```\nx\n```\n```\ny\n```").as_deref(),
            Some("x")
        );
        assert_eq!(first_code_block("no code here"), None);
        assert_eq!(first_code_block("```rust\n\n```"), None);
        assert_eq!(
            first_code_block("```rust\nfn cut("),
            None,
            "an unclosed block is not whole"
        );
    }

    #[test]
    fn findings_are_read_line_by_line() {
        let answer = "Here is what I found:\n{\"line\": 2, \"severity\": \"error\", \"message\": \"overflow\", \"suggestion\": \"x.checked_add(1)\"}\n\
                      {\"line\": 0, \"message\": \"bad line\"}\nnot json\n{\"line\": 5, \"message\": \"slow\"},\n";
        let f = findings(answer);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].suggestion.as_deref(), Some("x.checked_add(1)"));
        assert_eq!(f[1].severity, "warning");
    }
}
