//! The background tier's candidates: signature outlines of the files whose definitions the
//! working tier used, facts from the project's manifests (Cargo.toml, package.json), the summary
//! of the older conversation and the map of top-level folders. Nothing here reads code bodies
//! or counts tokens.

use super::assemble::{Candidate, Request, Workspace};

/// The background tier, given the files the working tier drew definitions from.
pub(super) fn background(
    request: &Request<'_>,
    workspace: &dyn Workspace,
    related_files: &[String],
) -> Vec<Candidate> {
    let mut background = Vec::new();
    for (rank, path) in related_files.iter().enumerate() {
        let outline = workspace.outline(path);
        if outline.is_empty() {
            continue;
        }
        let lines: Vec<String> = outline
            .iter()
            .map(|d| {
                format!(
                    "{} {}: {}",
                    d.kind,
                    d.qualified,
                    d.signature.lines().next().unwrap_or("")
                )
            })
            .collect();
        let full = lines.join("\n");
        background.push(Candidate {
            source: path.clone(),
            lines: None,
            chunk_id: None,
            kind: "outline".into(),
            name: path.clone(),
            score: 20.0 - rank as f64 / 10.0,
            reason: "outline of a file whose definitions are used".into(),
            signature: lines
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"),
            full,
        });
    }
    for manifest in ["Cargo.toml", "package.json"] {
        if let Some(facts) = workspace
            .text(manifest)
            .and_then(|t| manifest_facts(manifest, &t.to_string()))
        {
            background.push(Candidate {
                source: manifest.into(),
                lines: None,
                chunk_id: None,
                kind: "manifest".into(),
                name: manifest.into(),
                score: 15.0,
                reason: "project manifest".into(),
                signature: facts.lines().next().unwrap_or("").to_string(),
                full: facts,
            });
        }
    }
    if let Some(summary) = request.summary.filter(|s| !s.trim().is_empty()) {
        background.push(Candidate {
            source: "conversation".into(),
            lines: None,
            chunk_id: None,
            kind: "summary".into(),
            name: "earlier conversation".into(),
            score: 25.0,
            reason: "summary of the older conversation".into(),
            signature: summary.lines().next().unwrap_or("").to_string(),
            full: summary.to_string(),
        });
    }
    let folders = workspace.folders();
    if !folders.is_empty() {
        let full = folders
            .iter()
            .map(|(f, n)| format!("{f}/ ({n} files)"))
            .collect::<Vec<_>>()
            .join("\n");
        background.push(Candidate {
            source: "folders".into(),
            lines: None,
            chunk_id: None,
            kind: "folders".into(),
            name: "top-level folders".into(),
            score: 10.0,
            reason: "map of the workspace".into(),
            signature: full.clone(),
            full,
        });
    }
    background
}

/// Name and dependencies from a manifest.
fn manifest_facts(name: &str, text: &str) -> Option<String> {
    match name {
        "Cargo.toml" => {
            let mut package = None;
            let mut deps = Vec::new();
            let mut section = String::new();
            for line in text.lines() {
                let line = line.trim();
                if line.starts_with('[') {
                    section = line.trim_matches(['[', ']']).to_string();
                    continue;
                }
                let Some((key, value)) = line.split_once('=') else {
                    continue;
                };
                let key = key.trim();
                if section == "package" && key == "name" {
                    package = Some(value.trim().trim_matches('"').to_string());
                } else if section.ends_with("dependencies")
                    && !key.is_empty()
                    && !key.starts_with('#')
                {
                    deps.push(key.to_string());
                }
            }
            let package = package?;
            Some(format!(
                "Rust crate `{package}`; dependencies: {}",
                deps.join(", ")
            ))
        }
        "package.json" => {
            let json: serde_json::Value = serde_json::from_str(text).ok()?;
            let package = json.get("name")?.as_str()?.to_string();
            let mut deps: Vec<String> = ["dependencies", "devDependencies"]
                .iter()
                .filter_map(|k| json.get(*k)?.as_object())
                .flat_map(|m| m.keys().cloned())
                .collect();
            deps.sort();
            Some(format!(
                "npm package `{package}`; dependencies: {}",
                deps.join(", ")
            ))
        }
        _ => None,
    }
}
