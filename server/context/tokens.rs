//! Token counts from a real tokenizer whose tables ship inside the binary (tiktoken's o200k_base
//! by default, cl100k_base selectable), in compact form ([`Bpe`]), and cached per content hash. Load it off the LSP task ([`Tokenizer::warm_up`])
//! before the first request needs it. An estimating counter ([`Tokenizer::estimating`]) serves
//! prompts for models that count with tokenizers of their own, without reading the tables.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use super::bpe::Bpe;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Encoding {
    #[default]
    O200kBase,
    Cl100kBase,
}

impl Encoding {
    pub fn from_name(name: &str) -> Option<Encoding> {
        match name {
            "o200k_base" => Some(Encoding::O200kBase),
            "cl100k_base" => Some(Encoding::Cl100kBase),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200kBase => "o200k_base",
            Encoding::Cl100kBase => "cl100k_base",
        }
    }

    /// The compact tables (part of the binary) with their pre-tokenizer, compiled on first use.
    pub(super) fn tables(self) -> &'static Bpe {
        static O200K: OnceLock<Bpe> = OnceLock::new();
        static CL100K: OnceLock<Bpe> = OnceLock::new();
        match self {
            Encoding::O200kBase => O200K.get_or_init(|| Bpe::new(super::bpe::O200K_BASE)),
            Encoding::Cl100kBase => CL100K.get_or_init(|| Bpe::new(super::bpe::CL100K_BASE)),
        }
    }
}

/// Counts tokens, remembering the count of every text by its hash; or, made by
/// [`Tokenizer::estimating`], estimates them without reading the tables.
pub struct Tokenizer {
    encoding: Encoding,
    cache: Mutex<HashMap<u64, u32>>,
    estimate: bool,
}

// Entries kept before the cache is cleared (a count is cheap to redo; memory is not free): the
// profile's `token_cache_entries`.

impl Tokenizer {
    pub fn new(encoding: Encoding) -> Tokenizer {
        Tokenizer {
            encoding,
            cache: Mutex::new(HashMap::new()),
            estimate: false,
        }
    }

    /// A counter that estimates a third of the bytes, rounded up (code has fewer tokens than
    /// that), and never reads the tables: for prompts whose model counts with a tokenizer of its
    /// own, such as completion's fill-in-the-middle models, where an exact count in this encoding
    /// would be an estimate all the same. Reading the tables pages in 4 MB of the binary.
    pub fn estimating(encoding: Encoding) -> Tokenizer {
        Tokenizer {
            estimate: true,
            ..Tokenizer::new(encoding)
        }
    }

    /// Whether counts are estimates ([`Tokenizer::estimating`]).
    pub fn estimates(&self) -> bool {
        self.estimate
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Loads the tables (about 0.1 s the first time); call it on a blocking thread.
    pub fn warm_up(&self) {
        let _ = self.encoding.tables();
    }

    /// Tokens of `text`, without caching.
    pub fn count(&self, text: &str) -> u32 {
        if self.estimate {
            return text.len().div_ceil(3).try_into().unwrap_or(u32::MAX);
        }
        self.encoding.tables().count(text) as u32
    }

    /// Tokens of a text whose content hash is `hash` (a chunk's hash, say): counted once.
    pub fn count_cached(&self, hash: u64, text: &str) -> u32 {
        if self.estimate {
            return self.count(text);
        }
        let key = hash ^ (self.encoding as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        if let Some(&n) = self.lock().get(&key) {
            return n;
        }
        let n = self.count(text);
        let mut cache = self.lock();
        if cache.len() >= crate::resources::current().token_cache_entries {
            cache.clear();
        }
        cache.insert(key, n);
        n
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, u32>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_with_both_encodings_and_caches_by_hash() {
        let o200k = Tokenizer::new(Encoding::O200kBase);
        let cl100k = Tokenizer::new(Encoding::Cl100kBase);
        let text = "fn main() { println!(\"hello, world\"); }";
        let (a, b) = (o200k.count(text), cl100k.count(text));
        assert!((8..20).contains(&a) && (8..20).contains(&b), "{a} {b}");
        assert_eq!(o200k.count(""), 0);
        // The cache answers by hash: a different text under the same hash gives the cached count.
        assert_eq!(o200k.count_cached(42, text), a);
        assert_eq!(o200k.count_cached(42, "x"), a);
        assert_eq!(
            Encoding::from_name("cl100k_base"),
            Some(Encoding::Cl100kBase)
        );
        // The estimate is a third of the bytes, counted afresh (no cache), above the exact count
        // for code.
        let estimating = Tokenizer::estimating(Encoding::O200kBase);
        assert!(estimating.estimates() && !o200k.estimates());
        assert_eq!(estimating.count(text), text.len().div_ceil(3) as u32);
        assert_eq!(estimating.count_cached(42, "x"), 1);
        assert!(estimating.count(text) >= a);
    }
}
