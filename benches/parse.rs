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

/// What a documentSymbol answer costs, stage by stage, on a Rust file: 0 = building the symbols,
/// 1 = and turning them into a `serde_json::Value` (tower-lsp-server does, for every result),
/// 2 = and encoding that `Value` (what tower-lsp-server's transport did), 3 = building and
/// encoding the symbols directly, without the `Value` (what Strata's transport does), 4 = the
/// client's side: parsing the encoded answer into a `serde_json::Value` (as the latency bench's
/// client does; editors parse it too).
#[divan::bench(args = ["1MB", "3MB"], consts = [0, 1, 2, 3, 4], sample_count = 10)]
fn answers<const STAGE: usize>(bencher: Bencher, size: &str) {
    let (language, source) = source("rust", size);
    let mut syntax = Syntax::new(Some(language), ChunkConfig::default());
    let parsed = syntax.update(1, Rope::from_str(&source), &[], true);
    let encoding = strata::lsp::Encoding::Utf16;
    let encoded = serde_json::to_vec(&strata::lsp::outline::symbols(&parsed, encoding)).unwrap();
    if STAGE == 4 {
        bencher.bench_local(|| {
            serde_json::from_slice::<serde_json::Value>(&encoded)
                .unwrap()
                .as_array()
                .unwrap()
                .len()
        });
        return;
    }
    bencher.bench_local(|| {
        let symbols = strata::lsp::outline::symbols(&parsed, encoding);
        match STAGE {
            0 => symbols.len(),
            1 => serde_json::to_value(&symbols)
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            2 => serde_json::to_vec(&serde_json::to_value(&symbols).unwrap())
                .unwrap()
                .len(),
            _ => serde_json::to_vec(&symbols).unwrap().len(),
        }
    });
}

/// What the server does for a whole-file answer (its answers are encoded per segment and kept):
/// 0 = documentSymbol on a fresh parse (every segment encoded: a document's first request), 1 =
/// documentSymbol after one keystroke (one segment encoded again), 2 and 3 = the same for
/// foldingRange, 4 and 5 = for `strata/chunks`. Rust.
#[divan::bench(args = ["1MB", "3MB"], consts = [0, 1, 2, 3, 4, 5], sample_count = 10)]
fn kept_answers<const STAGE: usize>(bencher: Bencher, size: &str) {
    use strata::lsp::outline::{encoded_chunks, encoded_folding_ranges, encoded_symbols};
    let (language, source) = source("rust", size);
    let encoding = strata::lsp::Encoding::Utf16;
    let encode = |parsed: &strata::documents::Parsed| match STAGE / 2 {
        0 => encoded_symbols(parsed, encoding).len(),
        1 => encoded_folding_ranges(parsed).len(),
        _ => encoded_chunks(parsed, encoding).len(),
    };
    if STAGE.is_multiple_of(2) {
        let text = Rope::from_str(&source);
        let mut syntax = Syntax::new(Some(language), ChunkConfig::default());
        let mut version = 0;
        bencher
            .with_inputs(|| {
                version += 1;
                syntax.update(version, text.clone(), &[], true)
            })
            .bench_local_refs(|parsed| encode(parsed));
    } else {
        let mut typing = Typing::new(language, &source, "x", false);
        encode(&typing.keystroke());
        bencher
            .with_inputs(|| typing.keystroke())
            .bench_local_refs(|parsed| encode(parsed));
    }
}

/// Counting the tokens of a 100 KB Rust file (o200k_base): 0 = Strata's compact tables
/// (`context::Tokenizer`), 1 = tiktoken's own `count_ordinary`.
#[divan::bench(consts = [0, 1], sample_count = 20)]
fn tokens<const WHICH: usize>(bencher: Bencher) {
    let (_, source) = source("rust", "100KB");
    let ours = strata::context::Tokenizer::new(strata::context::Encoding::O200kBase);
    let theirs = tiktoken_rs::o200k_base().unwrap();
    ours.warm_up();
    bencher.bench_local(|| match WHICH {
        0 => ours.count(&source) as usize,
        _ => theirs.count_ordinary(&source),
    });
}

/// Listing every chunk of a document with its id (`DocChunks::to_vec`), as each context pack and
/// completion prompt does: ten thousand chunks at 2.5 MB.
#[divan::bench(args = ["1MB", "3MB"], sample_count = 30)]
fn chunk_list(bencher: Bencher, size: &str) {
    let (language, source) = source("rust", size);
    let mut syntax = Syntax::new(Some(language), ChunkConfig::default());
    let parsed = syntax.update(1, Rope::from_str(&source), &[], true);
    bencher.bench_local(|| parsed.chunks.to_vec().len());
}
