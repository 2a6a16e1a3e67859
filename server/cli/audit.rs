//! `strata audit`: what went to models, from the local egress audit — one line per call (time,
//! agent, provider and model, cache, outcome, bytes, tokens, files), never the content.

use std::path::Path;

use super::workspace_root;

pub fn audit(json: bool, limit: usize, here: bool, cache_dir: Option<&Path>) -> Result<(), String> {
    use strata::llm::store::utc;
    let dir = strata::archive::cache_base(cache_dir);
    let (store, warning) = strata::llm::Store::open(&dir, u64::MAX).map_err(|e| e.to_string())?;
    if let Some(warning) = warning {
        eprintln!("strata: {warning}");
    }
    let workspace = if here {
        let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
        Some(workspace_root(&cwd)?.display().to_string())
    } else {
        None
    };
    let rows = store.recent_audit(limit, 0, workspace.as_deref());
    if json {
        for row in &rows {
            println!("{}", serde_json::to_string(row).map_err(|e| e.to_string())?);
        }
        return Ok(());
    }
    if rows.is_empty() {
        println!("No calls recorded in {}.", store.path().display());
        return Ok(());
    }
    println!(
        "{:<20} {:<10} {:<24} {:<9} {:<9} {:>8} {:>8} {:>7} {:>7}  files",
        "time (UTC)",
        "agent",
        "provider/model",
        "cache",
        "outcome",
        "sent",
        "received",
        "tok in",
        "tok out"
    );
    for r in &rows {
        let target = match (&r.provider, &r.model) {
            (Some(p), Some(m)) => format!("{p}/{m}"),
            (Some(p), None) => p.clone(),
            _ => "-".into(),
        };
        let files = match r.files.len() {
            0 => "-".to_owned(),
            1..=3 => r.files.join(", "),
            n => format!("{}, … ({n} files)", r.files[..2].join(", ")),
        };
        println!(
            "{:<20} {:<10} {:<24} {:<9} {:<9} {:>8} {:>8} {:>7} {:>7}  {files}",
            utc(r.at_ms),
            r.agent,
            target,
            r.cache,
            r.outcome,
            r.bytes_out,
            r.bytes_in,
            r.tokens_in,
            r.tokens_out,
        );
    }
    let upstream = rows
        .iter()
        .filter(|r| r.cache == "miss" && r.outcome != "cancelled")
        .count();
    let tokens: u64 = rows.iter().map(|r| r.tokens_in + r.tokens_out).sum();
    let sent: u64 = rows.iter().map(|r| r.bytes_out).sum();
    println!(
        "{} calls shown: {upstream} went to a model ({sent} bytes sent, {tokens} tokens), the rest were answered locally. \
         Audit: {}",
        rows.len(),
        store.path().display()
    );
    Ok(())
}
