//! Lookups the context tiers make: definitions by exact name, a file's outline, the workspace's
//! top-level folders, a file's symbol tables and symbols by name. Read-only, on a reader
//! connection.

use rusqlite::{Connection, OptionalExtension};

use super::symbols::{FileFacts, Import, Symbol, SymbolKind};

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

const SYMBOL: &str = "s.name, s.kind, s.scope, s.container, s.of_trait, s.public, s.detail,
    s.start_byte, s.end_byte, s.name_byte, s.signature_end, s.start_line, s.end_line";

fn symbol(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Symbol> {
    let kind: String = r.get(at + 1)?;
    Ok(Symbol {
        name: r.get(at)?,
        kind: SymbolKind::from_name(&kind).unwrap_or(SymbolKind::Variable),
        scope: r.get(at + 2)?,
        container: r.get(at + 3)?,
        of_trait: r.get(at + 4)?,
        public: r.get(at + 5)?,
        detail: r.get(at + 6)?,
        range: r.get::<_, i64>(at + 7)? as usize..r.get::<_, i64>(at + 8)? as usize,
        name_start: r.get::<_, i64>(at + 9)? as usize,
        signature_end: r.get::<_, i64>(at + 10)? as usize,
        lines: (r.get(at + 11)?, r.get(at + 12)?),
    })
}

/// The symbol tables of one file; `None` when the archive does not hold the file.
pub fn facts(conn: &Connection, path: &str) -> rusqlite::Result<Option<FileFacts>> {
    let Some(file_id) = conn
        .prepare_cached("SELECT id FROM files WHERE path = ?1")?
        .query_row([path], |r| r.get::<_, i64>(0))
        .optional()?
    else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SYMBOL} FROM symbols s WHERE s.file_id = ?1 ORDER BY s.start_byte, s.name_byte"
    ))?;
    let symbols = stmt
        .query_map([file_id], |r| symbol(r, 0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT scope, local, path, name, export, type_only FROM imports WHERE file_id = ?1
         ORDER BY rowid",
    )?;
    let imports = stmt
        .query_map([file_id], |r| {
            Ok(Import {
                scope: r.get(0)?,
                local: r.get(1)?,
                path: r.get(2)?,
                name: r.get(3)?,
                export: r.get(4)?,
                type_only: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(FileFacts { symbols, imports }))
}

/// Symbols named exactly `name` anywhere in the workspace, with their files, in path order.
pub fn symbols_named(
    conn: &Connection,
    name: &str,
    limit: usize,
) -> rusqlite::Result<Vec<(String, Symbol)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT f.path, {SYMBOL} FROM symbols s JOIN files f ON f.id = s.file_id
         WHERE s.name = ?1 ORDER BY f.path, s.start_byte LIMIT ?2"
    ))?;
    let rows = stmt.query_map(rusqlite::params![name, limit as i64], |r| {
        Ok((r.get::<_, String>(0)?, symbol(r, 1)?))
    })?;
    rows.collect()
}

/// Symbols declared in `container` (an impl's type, a trait, a class, an interface), named
/// `name` (every one when `name` is empty), with their files, in path order.
pub fn members(
    conn: &Connection,
    container: &str,
    name: &str,
    limit: usize,
) -> rusqlite::Result<Vec<(String, Symbol)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT f.path, {SYMBOL} FROM symbols s JOIN files f ON f.id = s.file_id
         WHERE s.name = ?2 AND s.container = ?1 ORDER BY f.path, s.start_byte LIMIT ?3"
    ))?;
    let mut all = conn.prepare_cached(&format!(
        "SELECT f.path, {SYMBOL} FROM symbols s JOIN files f ON f.id = s.file_id
         WHERE s.container = ?1 AND ?2 = '' ORDER BY f.path, s.start_byte LIMIT ?3"
    ))?;
    let stmt = if name.is_empty() { &mut all } else { &mut stmt };
    let rows = stmt.query_map(rusqlite::params![container, name, limit as i64], |r| {
        Ok((r.get::<_, String>(0)?, symbol(r, 1)?))
    })?;
    rows.collect()
}

/// Rust `mod` declarations of a file module named `name`, or whose `#[path]` ends in
/// `file_name`, with the files declaring them.
pub fn mod_declarations(
    conn: &Connection,
    name: &str,
    file_name: &str,
) -> rusqlite::Result<Vec<(String, Symbol)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT f.path, {SYMBOL} FROM symbols s JOIN files f ON f.id = s.file_id
         WHERE s.kind = 'modfile' AND (s.name = ?1 OR (s.detail != '' AND (s.detail = ?2 OR s.detail LIKE '%/' || ?2)))
         ORDER BY f.path, s.start_byte LIMIT 64"
    ))?;
    let rows = stmt.query_map(rusqlite::params![name, file_name], |r| {
        Ok((r.get::<_, String>(0)?, symbol(r, 1)?))
    })?;
    rows.collect()
}
