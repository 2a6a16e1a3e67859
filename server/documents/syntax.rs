//! The parse state of one document: parser, last tree and chunker. It turns the text and the
//! edits made since the last parse into a new tree and fresh chunks, reparsing incrementally.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ropey::Rope;
use tree_sitter::{InputEdit, Parser, Tree};

use crate::chunks::{Chunk, ChunkConfig, ChunkStats, Chunker};
use crate::syntax::{Language, parse_rope};

/// A parsed state of a document: everything a request needs, consistent with itself.
#[derive(Clone)]
pub struct Parsed {
    pub version: i32,
    pub text: Rope,
    pub language: Option<Language>,
    pub tree: Option<Tree>,
    pub chunks: Arc<Vec<Chunk>>,
    pub stats: ParseStats,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct ParseStats {
    pub chunk: ChunkStats,
    /// Edits folded into this parse (more than one when a burst coalesced).
    pub edits: usize,
    pub incremental: bool,
    pub parse_time: Duration,
    pub chunk_time: Duration,
}

/// Parser, tree and chunker of one document.
pub struct Syntax {
    language: Option<Language>,
    config: ChunkConfig,
    parser: Option<Parser>,
    tree: Option<Tree>,
    chunker: Chunker,
}

impl Syntax {
    pub fn new(language: Option<Language>, config: ChunkConfig) -> Syntax {
        let parser = language.and_then(|language| {
            let mut parser = Parser::new();
            parser.set_language(&language.grammar()).ok()?;
            Some(parser)
        });
        Syntax {
            language,
            config,
            parser,
            tree: None,
            chunker: Chunker::new(language, config),
        }
    }

    pub fn language(&self) -> Option<Language> {
        self.language
    }

    /// Brings the tree and chunks up to `text`. `edits` are the edits since the last update, in
    /// order; `reset` says the text was replaced whole (the old tree is of no use).
    pub fn update(&mut self, version: i32, text: Rope, edits: &[InputEdit], reset: bool) -> Parsed {
        let started = Instant::now();
        let mut old = if reset { None } else { self.tree.take() };
        if let Some(old) = &mut old {
            for edit in edits {
                old.edit(edit);
            }
        }
        let tree = match &mut self.parser {
            Some(parser) if self.config.parse.admits(&text) => {
                parse_rope(parser, &text, old.as_ref(), &self.config.parse)
            }
            _ => None,
        };
        let parse_time = started.elapsed();
        let chunks = match &tree {
            Some(tree) => self.chunker.chunk(&text, tree, old.as_ref()),
            None => self.chunker.windows(&text),
        };
        let stats = ParseStats {
            chunk: self.chunker.stats(),
            edits: edits.len(),
            incremental: old.is_some(),
            parse_time,
            chunk_time: started.elapsed() - parse_time,
        };
        self.tree = tree.clone();
        Parsed {
            version,
            text,
            language: self.language,
            tree,
            chunks: Arc::new(chunks),
            stats,
        }
    }
}
