//! Writes the token tables of the two encodings Strata counts with into `OUT_DIR`, read out of
//! tiktoken's (a build dependency only): every token's bytes in one blob, their offsets by rank,
//! and an open-addressing table from a byte string's `xxh3` to its rank. `context::bpe` includes
//! them, so the running server never builds tiktoken's 26 MB of maps.

use std::path::Path;

#[path = "context/bpe_layout.rs"]
mod layout;

use layout::{EMPTY, home};

fn main() {
    println!("cargo::rerun-if-changed=server/build.rs");
    println!("cargo::rerun-if-changed=server/context/bpe_layout.rs");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let out = Path::new(&out);
    let o200k = tiktoken_rs::o200k_base().expect("tiktoken's o200k_base loads");
    write(
        out,
        "o200k_base",
        &o200k,
        199_999,
        tiktoken_rs::O200K_BASE_PAT_STR,
    );
    let cl100k = tiktoken_rs::cl100k_base().expect("tiktoken's cl100k_base loads");
    write(out, "cl100k_base", &cl100k, 100_257, CL100K_PATTERN);
}

/// cl100k_base's pre-tokenizer, as tiktoken defines it (tiktoken-rs keeps it inside its
/// constructor).
const CL100K_PATTERN: &str = "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++|\\p{N}{1,3}+| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*+|\\s++$|\\s*[\\r\\n]|\\s+(?!\\S)|\\s";

/// Ranks below `ordinary` (the first special token): `NAME.blob`, `NAME.offsets` (u32 little
/// endian, one more than the ranks), `NAME.slots` (u32 little endian, a power of two) and
/// `NAME.pattern`.
fn write(out: &Path, name: &str, core: &tiktoken_rs::CoreBPE, ordinary: u32, pattern: &str) {
    let mut blob = Vec::new();
    let mut offsets = vec![0u32];
    let mut present = 0usize;
    for rank in 0..ordinary {
        if let Ok(bytes) = core.decode_bytes(&[rank]) {
            blob.extend_from_slice(&bytes);
            present += 1;
        }
        offsets.push(blob.len() as u32);
    }
    let size = (present * 2).next_power_of_two().max(2);
    let mut slots = vec![EMPTY; size];
    for rank in 0..ordinary as usize {
        let token = &blob[offsets[rank] as usize..offsets[rank + 1] as usize];
        if token.is_empty() {
            continue;
        }
        let mut slot = home(token, size);
        while slots[slot] != EMPTY {
            slot = (slot + 1) & (size - 1);
        }
        slots[slot] = rank as u32;
    }
    let le = |values: &[u32]| {
        values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>()
    };
    std::fs::write(out.join(format!("{name}.blob")), &blob).expect("write the blob");
    std::fs::write(out.join(format!("{name}.offsets")), le(&offsets)).expect("write offsets");
    std::fs::write(out.join(format!("{name}.slots")), le(&slots)).expect("write slots");
    std::fs::write(out.join(format!("{name}.pattern")), pattern).expect("write the pattern");
}
