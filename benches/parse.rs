//! Parse and chunk benchmarks (divan): opening a file (full parse + chunks), and one keystroke
//! (edit → incremental reparse → fresh chunks) on generated Rust and TypeScript files of 1 KB to
//! 3 MB, plus a keystroke that unbalances a brace. Run: `cargo bench --bench parse`.

mod common;

use common::Typing;
use divan::Bencher;
use ropey::Rope;
use strata::chunks::ChunkConfig;
use strata::documents::Syntax;
use strata::syntax::Language;

fn main() {
    divan::main();
}

const SIZES: &[&str] = &["1KB", "100KB", "1MB", "3MB"];
const LANGUAGES: &[&str] = &["rust", "typescript"];

fn source(language: &str, size: &str) -> (Language, String) {
    common::source(
        language,
        common::SIZES.iter().find(|(n, _)| *n == size).unwrap().1,
    )
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
    bencher.bench_local(|| typing.keystroke().chunks.len());
}

#[divan::bench(args = SIZES, consts = [0, 1], sample_count = 30)]
fn unbalanced_brace<const LANG: usize>(bencher: Bencher, size: &str) {
    let (language, source) = source(LANGUAGES[LANG], size);
    let mut typing = Typing::new(language, &source, "{\n", true);
    bencher.bench_local(|| typing.keystroke().chunks.len());
}
