//! Search over the archive: FTS5 BM25 (name weighted over signature, doc and body), every word
//! a prefix, with chunks whose name is the query, or starts with it, ranked first.

use rusqlite::{Connection, params_from_iter};

use super::terms::match_expression;
use crate::chunks::ChunkKind;
use crate::documents::Point3;

#[derive(Clone, Debug, Default)]
pub struct SearchQuery {
    pub text: String,
    pub limit: usize,
    /// Only chunks of these kinds (`function`, `struct`…) when given.
    pub kinds: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// Relative to the workspace root.
    pub path: String,
    pub chunk_id: String,
    pub kind: String,
    pub name: String,
    pub qualified: String,
    pub signature: String,
    pub start: Point3,
    pub end: Point3,
    /// Higher is better.
    pub score: f64,
}

/// Score added for a chunk named exactly what was asked (case-insensitive), and for one whose
/// name starts with it.
const EXACT_NAME: f64 = 100.0;
const NAME_PREFIX: f64 = 50.0;

const COLUMNS: &str = "f.path, c.chunk_id, c.kind, c.name, c.qualified, c.signature,
    c.start_line, c.start_col8, c.start_col16, c.start_col32,
    c.end_line, c.end_col8, c.end_col16, c.end_col32";

fn hit(r: &rusqlite::Row<'_>, score: f64) -> rusqlite::Result<Hit> {
    let point = |at: usize| -> rusqlite::Result<Point3> {
        Ok(Point3 {
            line: r.get(at)?,
            col8: r.get(at + 1)?,
            col16: r.get(at + 2)?,
            col32: r.get(at + 3)?,
        })
    };
    Ok(Hit {
        path: r.get(0)?,
        chunk_id: r.get(1)?,
        kind: r.get(2)?,
        name: r.get(3)?,
        qualified: r.get(4)?,
        signature: r.get(5)?,
        start: point(6)?,
        end: point(10)?,
        score,
    })
}

/// Most full-text matches scored per pass.
const SCORED: usize = 200;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Table {
    /// Names alone: small doclists, searched first.
    Names,
    /// Names, signatures, docs and bodies.
    Chunks,
}

/// Chunk ids matching an FTS5 expression with their BM25 scores (higher is better), best
/// first: at most [`SCORED`] of the matches, in index order, are scored.
fn scored_matches(
    conn: &Connection,
    table: Table,
    expression: &str,
) -> rusqlite::Result<Vec<(i64, f64)>> {
    let sql = match table {
        // Weighted as the name column is in the full table.
        Table::Names => format!(
            "SELECT rowid, -10.0 * bm25(names_fts) FROM names_fts WHERE names_fts MATCH ?1 LIMIT {SCORED}"
        ),
        Table::Chunks => format!(
            "SELECT rowid, -bm25(chunks_fts, 10.0, 4.0, 2.0, 1.0) FROM chunks_fts WHERE chunks_fts MATCH ?1 LIMIT {SCORED}"
        ),
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([expression], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?))
    })?;
    let mut scored: Vec<(i64, f64)> = rows.collect::<rusqlite::Result<_>>()?;
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(scored)
}

pub fn search(conn: &Connection, query: &SearchQuery) -> rusqlite::Result<Vec<Hit>> {
    let limit = query.limit.clamp(1, 1000);
    let Some(expression) = match_expression(&query.text) else {
        return Ok(Vec::new());
    };
    let kinds: Vec<String> = query
        .kinds
        .iter()
        .flatten()
        .filter(|k| {
            ChunkKind::from_capture(k).is_some()
                || matches!(k.as_str(), "group" | "part" | "window")
        })
        .cloned()
        .collect::<std::collections::BTreeSet<String>>() // each kind once
        .into_iter()
        .collect();
    if query.kinds.is_some() && kinds.is_empty() {
        return Ok(Vec::new());
    }
    let kind_filter = if kinds.is_empty() {
        String::new()
    } else {
        format!(" AND c.kind IN ({})", vec!["?"; kinds.len()].join(", "))
    };

    // Candidates fetched before the kind filter and the merge.
    let candidates = if kinds.is_empty() {
        limit * 2
    } else {
        limit * 8
    };

    // Exact and prefix name matches, through the name index.
    let name = query.text.trim();
    let mut hits: Vec<Hit> = Vec::new();
    if !name.is_empty() && !name.contains(char::is_whitespace) {
        let sql = format!(
            "SELECT {COLUMNS}, lower(c.name) = lower(?1)
             FROM (SELECT id FROM chunks WHERE name >= ?2 COLLATE NOCASE AND name < ?3 COLLATE NOCASE
                   LIMIT {candidates}) m
             JOIN chunks c ON c.id = m.id JOIN files f ON f.id = c.file_id
             WHERE 1 {kind_filter}"
        );
        // Names from `name` up to `name` followed by the highest character: those it prefixes.
        let upper = format!("{name}\u{10FFFF}");
        let mut stmt = conn.prepare_cached(&sql)?;
        let args = [name.to_string(), name.to_string(), upper]
            .into_iter()
            .chain(kinds.iter().cloned());
        let rows = stmt.query_map(params_from_iter(args), |r| {
            let exact: bool = r.get(14)?;
            // Among prefix matches, the shorter name is the closer one.
            let closeness = 1.0 / (1.0 + r.get::<_, String>(3)?.len() as f64);
            hit(
                r,
                if exact {
                    EXACT_NAME
                } else {
                    NAME_PREFIX + closeness
                },
            )
        })?;
        for row in rows {
            hits.push(row?);
        }
    }

    // Full-text matches: names first; signatures, docs and bodies too when those are not
    // enough. Each pass scores at most SCORED matches, so a word found in half the workspace
    // costs about the same as a rare one.
    for table in [Table::Names, Table::Chunks] {
        // Name matches outscore any full-text match: enough of them settle the answer.
        if hits.iter().filter(|h| h.score >= NAME_PREFIX).count() >= limit
            || table == Table::Chunks && hits.len() >= limit
        {
            break;
        }
        let ids = scored_matches(conn, table, &expression)?;
        let ids: Vec<(i64, f64)> = ids.into_iter().take(candidates).collect();
        if ids.is_empty() {
            continue;
        }
        let placeholders = vec!["?"; ids.len()].join(", ");
        let sql = format!(
            "SELECT {COLUMNS}, c.id FROM chunks c JOIN files f ON f.id = c.file_id
             WHERE c.id IN ({placeholders}) {kind_filter}"
        );
        let mut stmt = conn.prepare(&sql)?;
        let args = ids
            .iter()
            .map(|(id, _)| rusqlite::types::Value::Integer(*id))
            .chain(
                kinds
                    .iter()
                    .map(|k| rusqlite::types::Value::Text(k.clone())),
            );
        let rows = stmt.query_map(params_from_iter(args), |r| {
            let id: i64 = r.get(14)?;
            let score = ids.iter().find(|(i, _)| *i == id).map_or(0.0, |(_, s)| *s);
            hit(r, score)
        })?;
        for row in rows {
            let row = row?;
            match hits
                .iter_mut()
                .find(|h| h.path == row.path && h.chunk_id == row.chunk_id)
            {
                Some(h) if table == Table::Chunks => h.score = h.score.max(row.score),
                Some(h) => h.score += row.score,
                None => hits.push(row),
            }
        }
    }
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.path.cmp(&b.path))
            .then_with(|| a.start.line.cmp(&b.start.line))
    });
    hits.truncate(limit);
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{Archive, IndexConfig};

    /// An archive of a workspace holding `files`, indexed (the temp dirs live as long as it).
    fn indexed(files: &[(&str, &str)]) -> (Archive, [tempfile::TempDir; 2]) {
        let ws = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(ws.path().join(name), text).unwrap();
        }
        let (archive, _) = Archive::open(ws.path(), Some(cache.path())).unwrap();
        archive.index(&IndexConfig::default(), &|_, _| {}).unwrap();
        (archive, [ws, cache])
    }

    fn find(archive: &Archive, text: &str) -> Vec<Hit> {
        archive
            .search(&SearchQuery {
                text: text.into(),
                limit: 10,
                kinds: None,
            })
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn full_text_matches_are_scored_and_names_outrank_bodies() {
        let (archive, _dirs) = indexed(&[
            ("a.rs", "/// Builds a tree.\npub fn build_tree() {}\n"),
            (
                "b.rs",
                "fn caller() {\n    build_tree();\n    other_tree();\n}\n",
            ),
            ("c.rs", "fn unrelated() {}\n"),
        ]);
        let hits = find(&archive, "build tree");
        let names: Vec<&str> = hits.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["build_tree", "caller"], "{hits:#?}");
        assert!(hits.iter().all(|h| h.score > 0.0), "{hits:#?}");
        assert!(hits[0].score > hits[1].score);
        // Only body text: still found, still scored.
        let hits = find(&archive, "other_tree");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].name, "caller");
        assert!(hits[0].score > 0.0, "{hits:#?}");
    }

    #[test]
    fn identifiers_in_any_script_are_found_whole_and_by_prefix() {
        // Devanagari vowel signs are combining marks (a word of them is several tokens to the
        // full-text tokenizer, so the query holds phrases); the rest are letters with and without
        // diacritics.
        let (archive, _dirs) = indexed(&[(
            "a.rs",
            "fn हिन्दी_नाम() {}\nfn caller() {\n    let 東京タワー = Ελληνικά;\n    grüße_été();\n}\n",
        )]);
        for (query, name) in [
            ("हिन्दी_नाम", "हिन्दी_नाम"),
            ("हिन्दी", "हिन्दी_नाम"),
            ("हिन्", "हिन्दी_नाम"),
            ("नाम", "हिन्दी_नाम"),
            ("東京タワー", "caller"),
            ("ελληνικ", "caller"),
            ("grüße_été", "caller"),
            ("été", "caller"),
        ] {
            let hits = find(&archive, query);
            assert!(
                hits.iter().any(|h| h.name == name),
                "{query} should find {name}: {hits:#?}"
            );
        }
    }
}
