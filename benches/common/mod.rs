//! Deterministic generators of realistic Rust and TypeScript source files for the benchmarks:
//! modules of documented structs, enums, traits, impls with methods, free functions, interfaces,
//! classes and arrow functions, with bodies of ordinary statements, strings and comments.

#![allow(dead_code)]

use std::fmt::Write;

use ropey::Rope;
use strata::chunks::ChunkConfig;
use strata::documents::{Parsed, Syntax};
use strata::syntax::{Language, input_edit};

pub const SIZES: &[(&str, usize)] = &[
    ("1KB", 1024),
    ("100KB", 100 * 1024),
    ("1MB", 1024 * 1024),
    ("3MB", 3 * 1024 * 1024),
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// A word for a name: a few common ones, and a long tail of rarer ones (as in real code,
    /// where most identifiers are specific to their corner of the project).
    fn word(&mut self) -> String {
        const WORDS: &[&str] = &[
            "buffer", "cursor", "index", "value", "count", "total", "name", "path", "entry",
            "node", "range", "state", "limit", "offset", "token", "chunk", "cache", "query",
            "result", "item",
        ];
        const SYLLABLES: &[&str] = &[
            "ka", "lo", "mir", "zen", "tor", "ba", "vel", "quin", "dra", "fe", "gul", "ho", "ix",
            "jo", "ne", "pra", "ru", "sil", "ta", "wy",
        ];
        if self.below(10) < 3 {
            return WORDS[self.below(WORDS.len())].to_string();
        }
        // 8,000 rarer words, the lower-numbered ones more often.
        let u = (self.next() % 10_000) as f64 / 10_000.0;
        let n = (u * u * 8000.0) as usize;
        let mut word = String::new();
        for k in [n % 20, (n / 20) % 20, n / 400] {
            word.push_str(SYLLABLES[k % SYLLABLES.len()]);
        }
        word
    }
}

fn camel(word: &str) -> String {
    let mut c = word.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

fn rust_body(rng: &mut Rng, out: &mut String, indent: &str) {
    for _ in 0..2 + rng.below(8) {
        let (a, b) = (rng.word(), rng.word());
        match rng.below(6) {
            0 => writeln!(out, "{indent}let {a} = {b}.len() + {};", rng.below(100)),
            1 => writeln!(out, "{indent}if {a} > {} {{\n{indent}    return Err(Error::new(\"{a} too large: {{}}\", {a}));\n{indent}}}", rng.below(1000)),
            2 => writeln!(out, "{indent}for {a} in self.{b}.iter() {{\n{indent}    total += {a}.{};\n{indent}}}", rng.word()),
            3 => writeln!(out, "{indent}// Keep the {a} in step with the {b}."),
            4 => writeln!(out, "{indent}let {a}: Vec<_> = {b}.iter().map(|x| x * 2).collect();"),
            _ => writeln!(out, "{indent}self.{a}.insert(\"{b}\".to_string(), {});", rng.below(50)),
        }
        .unwrap();
    }
}

/// A Rust file of at least `size` bytes.
pub fn rust(size: usize, seed: u64) -> String {
    let mut rng = Rng(seed);
    let mut out = String::from(
        "//! Generated for benchmarks.\n\nuse std::collections::HashMap;\nuse std::fmt;\n\n",
    );
    let mut n = 0;
    while out.len() < size {
        n += 1;
        let ty = format!("{}{}{n}", camel(&rng.word()), camel(&rng.word()));
        match rng.below(5) {
            0 | 1 => {
                writeln!(
                    out,
                    "/// The {} of a {}.\n#[derive(Debug, Clone, Default)]\npub struct {ty} {{",
                    rng.word(),
                    rng.word()
                )
                .unwrap();
                for _ in 0..1 + rng.below(5) {
                    writeln!(
                        out,
                        "    pub {}: {},",
                        rng.word(),
                        ["u64", "String", "Vec<u8>", "HashMap<String, u64>"][rng.below(4)]
                    )
                    .unwrap();
                }
                out.push_str("}\n\n");
                writeln!(out, "impl {ty} {{").unwrap();
                for m in 0..1 + rng.below(5) {
                    writeln!(out, "    /// Updates the {}.\n    pub fn {}_{m}(&mut self, {}: usize) -> Result<usize, Error> {{\n        let mut total = 0;", rng.word(), rng.word(), rng.word()).unwrap();
                    rust_body(&mut rng, &mut out, "        ");
                    out.push_str("        Ok(total)\n    }\n\n");
                }
                out.push_str("}\n\n");
            }
            2 => {
                writeln!(
                    out,
                    "pub enum {ty} {{\n    {},\n    {}(u64),\n    {} {{ at: usize }},\n}}\n",
                    camel(&rng.word()),
                    camel(&rng.word()),
                    camel(&rng.word())
                )
                .unwrap();
                writeln!(out, "impl fmt::Display for {ty} {{\n    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{\n        write!(f, \"{ty}\")\n    }}\n}}\n").unwrap();
            }
            3 => {
                writeln!(out, "/// Reads a {}.\npub fn read_{}_{n}(input: &str, limit: usize) -> Option<u64> {{\n    let mut total = 0;", rng.word(), rng.word()).unwrap();
                rust_body(&mut rng, &mut out, "    ");
                out.push_str("    Some(total)\n}\n\n");
            }
            _ => {
                writeln!(out, "pub trait {ty} {{\n    fn {}(&self) -> u64;\n    fn {}(&mut self, at: usize);\n}}\n\nconst {}_{n}: usize = {};\n", rng.word(), rng.word(), rng.word().to_uppercase(), rng.below(4096)).unwrap();
            }
        }
    }
    out
}

fn ts_body(rng: &mut Rng, out: &mut String, indent: &str) {
    for _ in 0..2 + rng.below(8) {
        let (a, b) = (rng.word(), rng.word());
        match rng.below(5) {
            0 => writeln!(out, "{indent}const {a}{} = this.{b}.length + {};", rng.below(9), rng.below(100)),
            1 => writeln!(out, "{indent}if (total > {}) {{\n{indent}  throw new Error(`{a} too large: ${{total}}`);\n{indent}}}", rng.below(1000)),
            2 => writeln!(out, "{indent}for (const x of this.{a}) {{\n{indent}  total += x.{b};\n{indent}}}"),
            3 => writeln!(out, "{indent}// Keep the {a} in step with the {b}."),
            _ => writeln!(out, "{indent}total += [1, 2, 3].map((x) => x * {}).reduce((p, q) => p + q, 0);", rng.below(9)),
        }
        .unwrap();
    }
}

/// A TypeScript file of at least `size` bytes.
pub fn typescript(size: usize, seed: u64) -> String {
    let mut rng = Rng(seed);
    let mut out =
        String::from("import { readFile } from \"fs\";\nimport * as path from \"path\";\n\n");
    let mut n = 0;
    while out.len() < size {
        n += 1;
        let ty = format!("{}{}{n}", camel(&rng.word()), camel(&rng.word()));
        match rng.below(4) {
            0 | 1 => {
                writeln!(
                    out,
                    "/** The {} of a {}. */\nexport class {ty} {{\n  private {}: number[] = [];\n",
                    rng.word(),
                    rng.word(),
                    rng.word()
                )
                .unwrap();
                for m in 0..1 + rng.below(5) {
                    writeln!(out, "  /** Updates the {}. */\n  {}{m}({}: number): number {{\n    let total = 0;", rng.word(), rng.word(), rng.word()).unwrap();
                    ts_body(&mut rng, &mut out, "    ");
                    out.push_str("    return total;\n  }\n\n");
                }
                out.push_str("}\n\n");
            }
            2 => {
                writeln!(out, "export interface {ty} {{\n  {}: string;\n  {}?: number;\n  {}(at: number): void;\n}}\n\nexport type {ty}Map = Map<string, {ty}>;\n", rng.word(), rng.word(), rng.word()).unwrap();
            }
            _ => {
                writeln!(out, "export const {}{n} = (input: string, limit: number): number => {{\n  let total = 0;", rng.word()).unwrap();
                ts_body(&mut rng, &mut out, "  ");
                out.push_str("  return total;\n};\n\n");
            }
        }
    }
    out
}

/// A generated file of `language` ("rust" or "typescript") of at least `bytes` bytes.
pub fn source(language: &str, bytes: usize) -> (Language, String) {
    match language {
        "rust" => (Language::Rust, rust(bytes, 7)),
        _ => (Language::TypeScript, typescript(bytes, 7)),
    }
}

/// A document being typed into at one place, inserting and deleting `insert` in turn.
pub struct Typing {
    syntax: Syntax,
    text: Rope,
    version: i32,
    at: usize,
    insert: &'static str,
    inserted: bool,
}

impl Typing {
    pub fn new(language: Language, source: &str, insert: &'static str, line_start: bool) -> Typing {
        let mut syntax = Syntax::new(Some(language), ChunkConfig::default());
        let text = Rope::from_str(source);
        syntax.update(1, text.clone(), &[], true);
        // Inside a function body near the middle of the file.
        let anchor = source[source.len() / 2..]
            .find("total")
            .map_or(source.len() / 2, |i| i + source.len() / 2);
        let at = if line_start {
            source[..anchor].rfind('\n').map_or(0, |i| i + 1)
        } else {
            anchor
        };
        Typing {
            syntax,
            text,
            version: 1,
            at,
            insert,
            inserted: false,
        }
    }

    pub fn keystroke(&mut self) -> Parsed {
        let before = self.text.clone();
        let (start, old_end, new_end) = if self.inserted {
            let end = self.at + self.insert.len();
            self.text
                .remove(self.text.byte_to_char(self.at)..self.text.byte_to_char(end));
            (self.at, end, self.at)
        } else {
            self.text
                .insert(self.text.byte_to_char(self.at), self.insert);
            (self.at, self.at, self.at + self.insert.len())
        };
        self.inserted = !self.inserted;
        self.version += 1;
        let edit = input_edit(&before, &self.text, start, old_end, new_end);
        self.syntax
            .update(self.version, self.text.clone(), &[edit], false)
    }
}
