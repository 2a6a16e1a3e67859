//! Byte-pair token counting over compact tables. tiktoken's own tables for o200k_base take 26 MB
//! of heap (two hash maps of owned byte vectors and two sorted copies); counting needs only the
//! rank of a byte string. `server/build.rs` reads tiktoken's tables at build time and writes every
//! token's bytes in one blob, indexed by rank, and an open-addressing table from a byte string's
//! hash to its rank (about 4 MB for o200k_base), which are part of the binary. The counts equal
//! tiktoken's `count_ordinary` (tested over a corpus).

use fancy_regex::Regex;

use super::bpe_layout::{EMPTY, home};

/// One encoding's tables as `server/build.rs` wrote them.
pub struct Tables {
    pub blob: &'static [u8],
    pub offsets: &'static [u8],
    pub slots: &'static [u8],
    pub pattern: &'static str,
}

macro_rules! tables {
    ($name:literal) => {
        Tables {
            blob: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".blob")),
            offsets: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".offsets")),
            slots: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".slots")),
            pattern: include_str!(concat!(env!("OUT_DIR"), "/", $name, ".pattern")),
        }
    };
}

pub const O200K_BASE: Tables = tables!("o200k_base");
pub const CL100K_BASE: Tables = tables!("cl100k_base");

pub struct Bpe {
    tables: Tables,
    /// The pre-tokenizer: text is cut into pieces, each encoded on its own.
    pattern: Regex,
}

impl Bpe {
    pub fn new(tables: Tables) -> Bpe {
        Bpe {
            pattern: Regex::new(tables.pattern).expect("the tokenizer's pattern compiles"),
            tables,
        }
    }

    /// Bytes of the tables (in the binary, paged in as they are read).
    #[cfg(test)]
    pub fn table_bytes(&self) -> usize {
        self.tables.blob.len() + self.tables.offsets.len() + self.tables.slots.len()
    }

    fn token(&self, rank: u32) -> &[u8] {
        let (start, end) = (
            word(self.tables.offsets, rank as usize) as usize,
            word(self.tables.offsets, rank as usize + 1) as usize,
        );
        &self.tables.blob[start..end]
    }

    fn rank(&self, bytes: &[u8]) -> Option<u32> {
        let size = self.tables.slots.len() / 4;
        let mut slot = home(bytes, size);
        loop {
            match word(self.tables.slots, slot) {
                EMPTY => return None,
                rank if self.token(rank) == bytes => return Some(rank),
                _ => slot = (slot + 1) & (size - 1),
            }
        }
    }

    /// The number of tokens of `text`, special-token text counted as ordinary text.
    pub fn count(&self, text: &str) -> usize {
        let mut count = 0;
        let mut at = 0;
        for piece in self.pattern.find_iter(text) {
            match piece {
                Ok(piece) => {
                    count += self.count_piece(piece.as_str().as_bytes());
                    at = piece.end();
                }
                // The pattern gave up (its backtracking limit; tiktoken would panic): the rest
                // is estimated at four bytes a token.
                Err(_) => return count + (text.len() - at).div_ceil(4),
            }
        }
        count
    }

    /// Tokens of one piece: one if the piece is a token, else the merges of byte-pair encoding,
    /// the pair of lowest rank first (the leftmost of equals).
    fn count_piece(&self, piece: &[u8]) -> usize {
        if piece.len() <= 1 || self.rank(piece).is_some() {
            return piece.len().min(1);
        }
        // Token i spans piece[starts[i]..starts[i + 1]]; pairs[i] is the rank of tokens i and
        // i + 1 merged.
        let mut starts: Vec<usize> = (0..=piece.len()).collect();
        let pair = |starts: &[usize], i: usize| -> Option<u32> {
            (i + 2 < starts.len())
                .then(|| self.rank(&piece[starts[i]..starts[i + 2]]))
                .flatten()
        };
        let mut pairs: Vec<Option<u32>> = (0..piece.len()).map(|i| pair(&starts, i)).collect();
        while let Some((_, i)) = pairs
            .iter()
            .enumerate()
            .filter_map(|(i, rank)| rank.map(|rank| (rank, i)))
            .min()
        {
            starts.remove(i + 1);
            pairs.remove(i + 1);
            pairs[i] = pair(&starts, i);
            if i > 0 {
                pairs[i - 1] = pair(&starts, i - 1);
            }
        }
        starts.len() - 1
    }
}

/// The `i`th little-endian u32 of `bytes`.
fn word(bytes: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([
        bytes[4 * i],
        bytes[4 * i + 1],
        bytes[4 * i + 2],
        bytes[4 * i + 3],
    ])
}

#[cfg(test)]
mod tests {
    use super::super::tokens::Encoding;

    /// Text that exercises every branch of both pre-tokenizers: contractions in any case,
    /// letters of many scripts with marks, digit runs, punctuation runs with line breaks and
    /// slashes, whitespace runs before words and at the end, CRLF, emoji and other astral
    /// characters, and text that looks like special tokens.
    const SAMPLES: &[&str] = &[
        "",
        " ",
        "a",
        "don't I'LL we'Re they've SHE'D it's 'm",
        "Ünïcödé naïve café résumé — “quotes” ‘and’ «guillemets»",
        "中文分词测试，日本語のテキスト、한국어 텍스트",
        "العربية والفارسية עברית हिन्दी ภาษาไทย",
        "e\u{301}\u{302} a\u{20dd} combining marks",
        "😀🦀🚀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵",
        "1234567890 3.14159 1e-9 0xDEADBEEF 1_000_000",
        "a//b /// c\r\n\r\n\n\n   \t\t  x  \n   ",
        "fn main() {\r\n    println!(\"{}\", x);\r\n}\r\n",
        "    indented\n\n\n        more\t\ttabs   \n",
        "<|endoftext|><|fim_prefix|> not special here",
        "trailing spaces   ",
        "!!!???...,,,;;;:::'''\"\"\"",
    ];

    fn corpus() -> Vec<String> {
        let mut texts: Vec<String> = SAMPLES.iter().map(|s| s.to_string()).collect();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for dir in [
            "server/context",
            "server/lsp",
            "docs",
            "queries/rust",
            "editors/vscode/src",
        ] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
                if let Ok(text) = std::fs::read_to_string(entry.path()) {
                    texts.push(text);
                }
            }
        }
        texts
    }

    #[test]
    fn counts_equal_tiktoken_for_both_encodings() {
        let texts = corpus();
        assert!(texts.len() > 40, "{} texts", texts.len());
        for (encoding, core) in [
            (Encoding::O200kBase, tiktoken_rs::o200k_base().unwrap()),
            (Encoding::Cl100kBase, tiktoken_rs::cl100k_base().unwrap()),
        ] {
            let bpe = encoding.tables();
            assert!(bpe.table_bytes() < 6 << 20, "{} bytes", bpe.table_bytes());
            for text in &texts {
                assert_eq!(
                    bpe.count(text),
                    core.count_ordinary(text),
                    "{encoding:?} on {:?}",
                    text.chars().take(80).collect::<String>()
                );
            }
        }
    }
}
