//! The layout of the token tables, shared by `server/build.rs`, which writes them, and
//! `context::bpe`, which reads them: where a byte string's rank is looked for first, and what an
//! empty slot holds. Offsets and slots are little-endian u32; the slot count is a power of two.

use xxhash_rust::xxh3::xxh3_64;

/// A slot that holds no rank.
pub const EMPTY: u32 = u32::MAX;

/// The first slot of `bytes` among `slots` (a power of two); collisions probe the next ones.
pub fn home(bytes: &[u8], slots: usize) -> usize {
    (xxh3_64(bytes) & (slots as u64 - 1)) as usize
}
