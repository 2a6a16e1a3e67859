//! `strata chunks`: the chunk table of one file, through the server's chunking code path.

use std::path::PathBuf;

use ropey::Rope;
use strata::chunks::{ChunkConfig, render_table};
use strata::documents::chunk_text;
use strata::syntax::Language;

pub fn chunks(file: &PathBuf, json: bool) -> Result<(), String> {
    let bytes = std::fs::read(file).map_err(|e| e.to_string())?;
    let source = String::from_utf8_lossy(&bytes);
    let text = Rope::from_str(&source);
    let config = ChunkConfig::default();
    let language = Language::from_path(file);
    let chunks = chunk_text(&text, language, &config).to_vec();
    if json {
        for c in &chunks {
            let (first, last) = c.lines(&text);
            let line = serde_json::json!({
                "id": &*c.id,
                "kind": c.kind.as_str(),
                "name": &*c.name,
                "path": &*c.path,
                "parent": c.parent.map(|p| &*chunks[p].id),
                "lines": [first + 1, last + 1],
                "byteRange": [c.range.start, c.range.end],
                "hash": format!("{:016x}", c.hash),
            });
            println!("{line}");
        }
    } else {
        let language = language.map_or("plain text (line windows)", Language::name);
        println!(
            "{}: {language}, {} bytes, {} chunks",
            file.display(),
            text.len_bytes(),
            chunks.len()
        );
        println!("{:>11} {:>7}  {:<9} name", "lines", "bytes", "kind");
        print!("{}", render_table(&chunks, &text));
    }
    Ok(())
}
