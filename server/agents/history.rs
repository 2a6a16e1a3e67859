//! Conversation history: the turns of each chat, in `history.sqlite` under Strata's data
//! directory — user data, kept apart from the caches, so it survives restarts and cache rebuilds.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, params};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,              -- the chat file's URI
    created_ms INTEGER NOT NULL,
    summary TEXT,                     -- of the messages up to summary_upto
    summary_upto INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    session TEXT NOT NULL REFERENCES sessions(id),
    role TEXT NOT NULL,               -- 'user' or 'assistant'
    content TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_session ON messages (session, id);
";

/// Strata's data directory: `$STRATA_DATA_DIR`, else `$XDG_DATA_HOME/strata`, else
/// `~/.local/share/strata`.
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STRATA_DATA_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map_or_else(std::env::temp_dir, PathBuf::from)
                .join(".local/share")
        });
    base.join("strata")
}

/// One stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    pub id: i64,
    pub role: String,
    pub content: String,
}

pub struct History {
    conn: Mutex<Connection>,
}

impl History {
    /// Opens (creating) `history.sqlite` in `dir`. Never moved aside or rebuilt: it is the
    /// user's.
    pub fn open(dir: &Path) -> Result<History, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join("history.sqlite");
        let conn = Connection::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))
            .and_then(|_| conn.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|_| conn.execute_batch(SCHEMA))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(History {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, session: &str, role: &str, content: &str, at_ms: i64) -> Result<i64, String> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR IGNORE INTO sessions (id, created_ms) VALUES (?1, ?2)",
            params![session, at_ms],
        )
        .and_then(|_| {
            conn.execute(
                "INSERT INTO messages (session, role, content, at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![session, role, content, at_ms],
            )
        })
        .map(|_| conn.last_insert_rowid())
        .map_err(|e| e.to_string())
    }

    /// The session's messages, oldest first.
    pub fn turns(&self, session: &str) -> Vec<Turn> {
        let conn = self.conn();
        conn.prepare_cached("SELECT id, role, content FROM messages WHERE session = ?1 ORDER BY id")
            .and_then(|mut s| {
                s.query_map([session], |r| {
                    Ok(Turn {
                        id: r.get(0)?,
                        role: r.get(1)?,
                        content: r.get(2)?,
                    })
                })?
                .collect()
            })
            .unwrap_or_default()
    }

    /// The summary of the session's messages up to (and including) a message id.
    pub fn summary(&self, session: &str) -> Option<(String, i64)> {
        self.conn()
            .query_row(
                "SELECT summary, summary_upto FROM sessions WHERE id = ?1 AND summary IS NOT NULL",
                [session],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok()
    }

    pub fn set_summary(&self, session: &str, summary: &str, upto: i64) -> Result<(), String> {
        self.conn()
            .execute(
                "UPDATE sessions SET summary = ?2, summary_upto = ?3 WHERE id = ?1",
                params![session, summary, upto],
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// A new chat file's text: the user writes below the last `## You`.
pub const CHAT_TEMPLATE: &str = "# Strata chat\n\nWrite below the last “## You” and run “Strata: send” (a code action).\n\n## You\n\n";

/// The message the user wrote below the last `## You`, if any.
pub fn pending_message(chat: &str) -> Option<String> {
    let at = chat.rfind("\n## You")?;
    let after = &chat[at + "\n## You".len()..];
    let message = after.trim();
    (!message.is_empty()).then(|| message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let h = History::open(dir.path()).unwrap();
            h.add("chat-1", "user", "hello", 1).unwrap();
            let id = h.add("chat-1", "assistant", "hi", 2).unwrap();
            h.set_summary("chat-1", "greetings", id).unwrap();
            h.add("chat-2", "user", "other", 3).unwrap();
        }
        let h = History::open(dir.path()).unwrap();
        let turns = h.turns("chat-1");
        assert_eq!(turns.len(), 2);
        assert_eq!(
            (turns[1].role.as_str(), turns[1].content.as_str()),
            ("assistant", "hi")
        );
        assert_eq!(h.summary("chat-1"), Some(("greetings".into(), turns[1].id)));
        assert_eq!(h.summary("chat-2"), None);
    }

    #[test]
    fn the_pending_message_is_below_the_last_you() {
        assert_eq!(pending_message(CHAT_TEMPLATE), None);
        let chat = format!("{CHAT_TEMPLATE}Why is it slow?\n");
        assert_eq!(pending_message(&chat).as_deref(), Some("Why is it slow?"));
        let more = format!("{chat}\n## Strata\n\nBecause.\n\n## You\n\nAnd now?\n");
        assert_eq!(pending_message(&more).as_deref(), Some("And now?"));
    }
}
