//! Parse and chunk benchmarks (divan): opening a file (full parse + chunks), and one keystroke
//! (edit → incremental reparse → fresh chunks) on generated Rust and TypeScript files of 1 KB to
//! 3 MB, plus a keystroke that unbalances a brace. Run: `cargo bench --bench parse`.

mod common;

use divan::Bencher;
use ropey::Rope;
use strata::chunks::ChunkConfig;
use strata::documents::Syntax;
use strata::syntax::{Language, input_edit};

fn main() {
    divan::main();
}

const SIZES: &[&str] = &["1KB", "100KB", "1MB", "3MB"];
const LANGUAGES: &[&str] = &["rust", "typescript"];

fn source(language: &str, size: &str) -> (Language, String) {
    let bytes = common::SIZES.iter().find(|(n, _)| *n == size).unwrap().1;
    match language {
        "rust" => (Language::Rust, common::rust(bytes, 7)),
        _ => (Language::TypeScript, common::typescript(bytes, 7)),
    }
}

/// A document being typed into at one place, inserting and deleting `insert` in turn.
struct Typing {
    syntax: Syntax,
    text: Rope,
    version: i32,
    at: usize,
    insert: &'static str,
    inserted: bool,
}

impl Typing {
    fn new(language: Language, source: &str, insert: &'static str, line_start: bool) -> Typing {
        let mut syntax = Syntax::new(Some(language), ChunkConfig::default());
        let text = Rope::from_str(source);
        syntax.update(1, text.clone(), &[], true);
        // Inside a function body near the middle of the file.
        let anchor = source[source.len() / 2..].find("total").map_or(source.len() / 2, |i| i + source.len() / 2);
        let at = if line_start { source[..anchor].rfind('\n').map_or(0, |i| i + 1) } else { anchor };
        Typing { syntax, text, version: 1, at, insert, inserted: false }
    }

    fn keystroke(&mut self) -> usize {
        let before = self.text.clone();
        let (start, old_end, new_end) = if self.inserted {
            let end = self.at + self.insert.len();
            self.text.remove(self.text.byte_to_char(self.at)..self.text.byte_to_char(end));
            (self.at, end, self.at)
        } else {
            self.text.insert(self.text.byte_to_char(self.at), self.insert);
            (self.at, self.at, self.at + self.insert.len())
        };
        self.inserted = !self.inserted;
        self.version += 1;
        let edit = input_edit(&before, &self.text, start, old_end, new_end);
        self.syntax.update(self.version, self.text.clone(), &[edit], false).chunks.len()
    }
}

#[divan::bench(args = SIZES, consts = [0, 1], sample_count = 10)]
fn open<const LANG: usize>(bencher: Bencher, size: &str) {
    let (language, source) = source(LANGUAGES[LANG], size);
    let text = Rope::from_str(&source);
    bencher.bench_local(|| {
        let mut syntax = Syntax::new(Some(language), ChunkConfig::default());
        syntax.update(1, text.clone(), &[], true).chunks.len()
    });
}

#[divan::bench(args = SIZES, consts = [0, 1], sample_count = 60)]
fn keystroke<const LANG: usize>(bencher: Bencher, size: &str) {
    let (language, source) = source(LANGUAGES[LANG], size);
    let mut typing = Typing::new(language, &source, "x", false);
    bencher.bench_local(|| typing.keystroke());
}

#[divan::bench(args = SIZES, consts = [0, 1], sample_count = 30)]
fn unbalanced_brace<const LANG: usize>(bencher: Bencher, size: &str) {
    let (language, source) = source(LANGUAGES[LANG], size);
    let mut typing = Typing::new(language, &source, "{\n", true);
    bencher.bench_local(|| typing.keystroke());
}
