//! `strata ask AGENT FILE:LINE[:COL]`: runs an agent on the code at a position through the same
//! session functions as the editor's `strata.runAgent` — target, pack, prompt, gateway (cache,
//! limits, audit), outcome — and streams its answer to stdout. Edits are printed, not applied.

use std::io::Write;
use std::path::Path;

use strata::context::Encoding;
use strata::llm::Store;
use strata::session::{Outcome, Step};

use super::{locate, prepare};

pub fn ask(
    agent: &str,
    position: &str,
    query: Option<&str>,
    config_file: Option<&Path>,
    cache_dir: Option<&Path>,
) -> Result<(), String> {
    let at = locate(position, config_file, cache_dir, Encoding::default())?;
    let session = &at.session;
    let agent = session.agent(agent)?;
    let prepared = prepare(&at, &agent, query, true)?;
    let max_bytes = at.config.cache.disk_mb.saturating_mul(1 << 20);
    let store = match Store::open(&strata::archive::cache_base(cache_dir), max_bytes) {
        Ok((store, _)) => {
            session.gateway.attach_store(store.clone());
            Some(store)
        }
        Err(e) => {
            eprintln!("strata: answers are not cached on disk and calls are not audited: {e}");
            None
        }
    };
    let result = at.runtime.block_on(async {
        let mut streamed = false;
        let answer = session
            .call(prepared.request.clone(), |step| {
                if let Step::Text { text, .. } = step {
                    streamed = true;
                    let mut stdout = std::io::stdout();
                    let _ = stdout.write_all(text.as_bytes());
                    let _ = stdout.flush();
                }
                async {}
            })
            .await?;
        if !streamed {
            print!("{}", answer.text);
        }
        println!();
        eprintln!(
            "— {}/{} ({:?}), {} tokens in, {} out{}",
            answer.provider,
            answer.model,
            answer.source,
            answer.input_tokens,
            answer.output_tokens,
            if answer.truncated {
                ", cut at max_tokens"
            } else {
                ""
            }
        );
        match session.outcome(&agent, &prepared, &answer).await? {
            Outcome::Edit { .. } => eprintln!(
                "— an edit of {} (not applied from the terminal)",
                prepared.rel
            ),
            Outcome::Findings(findings) => eprintln!("— {} findings", findings.len()),
            Outcome::Document { .. } => {}
            Outcome::Unparsable { reason, document } => {
                eprintln!("{document}");
                return Err(reason);
            }
        }
        Ok(())
    });
    if let Some(store) = store {
        store.flush();
    }
    result
}
