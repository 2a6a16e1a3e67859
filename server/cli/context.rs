//! `strata context FILE:LINE[:COL]`: the context an agent would get for a position — each tier,
//! its items with fidelity, tokens, score and reason, then the rendered text — assembled by the
//! session exactly as the server assembles it. With `--agent NAME`, the pack that agent's run uses
//! and the prompt it would send, byte for byte.

use std::path::Path;

use strata::context::{Budgets, ContextPack, Encoding};
use strata::llm::Parts;
use strata::session::Want;

use super::{locate, prepare};

/// What `strata context` was asked for.
pub struct Args<'a> {
    pub position: &'a str,
    pub query: Option<&'a str>,
    pub json: bool,
    pub budgets: Option<&'a str>,
    pub encoding: &'a str,
    pub agent: Option<&'a str>,
}

pub fn context(
    args: Args,
    config_file: Option<&Path>,
    cache_dir: Option<&Path>,
) -> Result<(), String> {
    let budgets = args.budgets.map(parse_budgets).transpose()?;
    let encoding = Encoding::from_name(args.encoding).ok_or_else(|| {
        format!(
            "--encoding {:?}: use o200k_base or cl100k_base",
            args.encoding
        )
    })?;
    let mut at = locate(args.position, config_file, cache_dir, encoding)?;
    // --budgets is what the user asked to see: it wins over the configuration and the agent.
    at.session.budgets = budgets;
    let (pack, prompt) = match args.agent {
        Some(name) => {
            let agent = at.session.agent(name)?;
            let prepared = prepare(&at, &agent, args.query, false)?;
            (prepared.pack, Some((agent.name, prepared.request.prompt)))
        }
        None => {
            let cursor = at.cursor;
            let pack = at
                .session
                .pack(
                    &at.key,
                    &at.parsed,
                    Want {
                        selection: cursor..cursor,
                        query: args.query,
                        budgets: at.session.budgets(None),
                        ..Want::default()
                    },
                )
                .0;
            (pack, None)
        }
    };
    if args.json {
        let mut value = serde_json::to_value(&pack).map_err(|e| e.to_string())?;
        value["rendered"] = serde_json::Value::String(pack.render());
        if let Some((agent, prompt)) = &prompt {
            let mut sent = serde_json::to_value(prompt.parts()).map_err(|e| e.to_string())?;
            sent["agent"] = agent.clone().into();
            value["prompt"] = sent;
        }
        println!("{value}");
        return Ok(());
    }
    print_pack(&pack);
    match prompt {
        Some((agent, prompt)) => {
            let what = match prompt.parts() {
                Parts::Chat { messages, .. } if messages.len() == 1 => "1 message".to_owned(),
                Parts::Chat { messages, .. } => format!("{} messages", messages.len()),
                Parts::Fim { .. } => "fill in the middle".to_owned(),
            };
            println!(
                "\n--- the prompt {agent} sends ({what}, {} bytes) ---\n{}",
                prompt.len(),
                prompt.transcript()
            );
        }
        None => println!(
            "\n--- rendered ({} encoding) ---\n{}",
            pack.encoding,
            pack.render()
        ),
    }
    Ok(())
}

/// `I,W,B` → budgets.
fn parse_budgets(spec: &str) -> Result<Budgets, String> {
    let n: Vec<u32> = spec
        .split(',')
        .map(|p| p.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--budgets {spec:?}: {e}"))?;
    let [immediate, working, background] = n[..] else {
        return Err(format!(
            "--budgets {spec:?}: give three numbers, immediate,working,background"
        ));
    };
    Ok(Budgets {
        immediate,
        working,
        background,
    })
}

fn print_pack(pack: &ContextPack) {
    for note in &pack.notes {
        println!("note: {note}");
    }
    for tier in &pack.tiers {
        let budget = if tier.budget == 0 {
            "∞".to_string()
        } else {
            tier.budget.to_string()
        };
        println!(
            "\n{} — {} of {budget} tokens, {} items, {} dropped",
            tier.tier.name(),
            tier.tokens,
            tier.items.len(),
            tier.dropped.len()
        );
        for item in &tier.items {
            let lines = item
                .lines
                .map(|(a, b)| format!(":{}-{}", a + 1, b + 1))
                .unwrap_or_default();
            println!(
                "  {:<9} {:>6} {:>8.2}  {}{lines}  {} {}  — {}",
                format!("{:?}", item.fidelity).to_lowercase(),
                item.tokens,
                item.score,
                item.source,
                item.kind,
                item.name,
                item.reason
            );
        }
    }
    if pack.redactions > 0 {
        println!("\n{} secrets redacted", pack.redactions);
    }
}
