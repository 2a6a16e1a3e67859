//! Lookups the context tiers make: definitions by exact name, a file's outline, the workspace's
//! top-level folders. Read-only, on a reader connection.

use rusqlite::Connection;

/// A chunk of the archive, located.
#[derive(Clone, Debug, PartialEq)]
pub struct Located {
    pub path: String,
    pub chunk_id: String,
    pub kind: String,
    pub name: String,
    pub qualified: String,
    pub signature: String,
    pub doc: String,
    pub start_byte: usize,
    pub end_byte: usize,
    pub start_line: u32,
    pub end_line: u32,
    pub hash: String,
}

const LOCATED: &str = "f.path, c.chunk_id, c.kind, c.name, c.qualified, c.signature, c.doc,
    c.start_byte, c.end_byte, c.start_line, c.end_line, c.hash";

fn located(r: &rusqlite::Row<'_>) -> rusqlite::Result<Located> {
    Ok(Located {
        path: r.get(0)?,
        chunk_id: r.get(1)?,
        kind: r.get(2)?,
        name: r.get(3)?,
        qualified: r.get(4)?,
        signature: r.get(5)?,
        doc: r.get(6)?,
        start_byte: r.get::<_, i64>(7)? as usize,
        end_byte: r.get::<_, i64>(8)? as usize,
        start_line: r.get(9)?,
        end_line: r.get(10)?,
        hash: r.get(11)?,
    })
}

/// Chunks named exactly `name` (not groups, parts or windows), in path order. (The NOCASE
/// comparison lets SQLite use the name index; the plain one keeps the case exact.)
pub fn definitions(conn: &Connection, name: &str, limit: usize) -> rusqlite::Result<Vec<Located>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {LOCATED} FROM chunks c JOIN files f ON f.id = c.file_id
         WHERE c.name = ?1 COLLATE NOCASE AND c.name = ?1 AND c.kind NOT IN ('group', 'part', 'window')
         ORDER BY f.path, c.start_byte LIMIT ?2"
    ))?;
    let rows = stmt.query_map(rusqlite::params![name, limit as i64], located)?;
    rows.collect()
}

/// The chunks of one file in order (not groups, parts or windows).
pub fn outline(conn: &Connection, path: &str) -> rusqlite::Result<Vec<Located>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {LOCATED} FROM chunks c JOIN files f ON f.id = c.file_id
         WHERE f.path = ?1 AND c.kind NOT IN ('group', 'part', 'window') ORDER BY c.start_byte"
    ))?;
    let rows = stmt.query_map([path], located)?;
    rows.collect()
}

/// The top-level folders of the workspace and how many indexed files each holds, by name.
pub fn top_folders(conn: &Connection) -> rusqlite::Result<Vec<(String, usize)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT CASE WHEN instr(path, '/') > 0 THEN substr(path, 1, instr(path, '/') - 1) ELSE '.' END AS top,
                count(*) FROM files GROUP BY top ORDER BY top",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as usize))
    })?;
    rows.collect()
}
