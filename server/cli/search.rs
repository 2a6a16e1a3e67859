//! `strata search`: searches the archive of the workspace around the current directory (indexing
//! what changed first); one line per hit, or one JSON object per hit.

use std::path::Path;

use strata::archive::SearchQuery;

use super::Output;
use super::index::index;

pub fn search(
    query: &str,
    json: bool,
    limit: usize,
    kinds: Vec<String>,
    config_file: Option<&Path>,
    cache_dir: Option<&Path>,
) -> Result<(), String> {
    let (archive, _) = index(None, cache_dir, Output::Quiet, None, config_file)?;
    let query = SearchQuery {
        text: query.to_string(),
        limit,
        kinds: (!kinds.is_empty()).then_some(kinds),
    };
    let hits = archive.search(&query).map_err(|e| e.to_string())?;
    for hit in &hits {
        if json {
            let line = serde_json::json!({
                "path": hit.path,
                "line": hit.start.line + 1,
                "column": hit.start.col32 + 1,
                "endLine": hit.end.line + 1,
                "id": hit.chunk_id,
                "kind": hit.kind,
                "name": hit.name,
                "qualifiedName": hit.qualified,
                "signature": hit.signature,
                "score": (hit.score * 1000.0).round() / 1000.0,
            });
            println!("{line}");
        } else {
            println!(
                "{}:{}:{}  {:<9} {}  ({:.2})\n    {}",
                hit.path,
                hit.start.line + 1,
                hit.start.col32 + 1,
                hit.kind,
                hit.qualified,
                hit.score,
                hit.signature.lines().next().unwrap_or("")
            );
        }
    }
    if hits.is_empty() && !json {
        eprintln!("no chunk matches {:?}", query.text);
    }
    Ok(())
}
