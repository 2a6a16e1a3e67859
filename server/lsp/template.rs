//! `Template`: JSON text with holes for the numbers that depend on where a segment of a document
//! now starts — its first line, its first byte, how many chunks of the same kind and path come
//! before it — so that an answer encoded for one segment is written again after edits elsewhere
//! moved the segment. The text is kept as last written, its numbers filled in: written again for
//! the same start (the segments before an edit, and every segment while the lines stay where they
//! were), it is copied as it is; for another start its numbers are filled in again, once. Bytes
//! only: no protocol types, no I/O.

use std::sync::{Mutex, OnceLock};

use rustc_hash::FxHashMap;

use crate::resources::lock;

/// What a hole's number is counted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// The segment's first line.
    Line,
    /// The segment's first byte.
    Byte,
    /// The chunks with this key (kind and path) in the segments before.
    Ordinal(u64),
}

/// A [`Base`], with an ordinal's key given by its place in the template's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum From {
    Line,
    Byte,
    Ordinal(u32),
}

#[derive(Clone, Copy, Debug)]
struct Hole {
    /// Where in the text its number begins.
    at: u32,
    /// The digits of its number there (none before the text is first filled in).
    len: u8,
    value: u32,
    from: From,
}

/// Where a segment starts, for filling in its holes.
pub struct Start<'a> {
    pub line: u32,
    pub byte: usize,
    /// Chunks per key in the segments before this one.
    pub ordinals: &'a FxHashMap<u64, u32>,
}

#[derive(Debug, Default)]
pub struct Template {
    text: Mutex<Text>,
    /// The keys of its ordinals, in the order first met.
    keys: Vec<u64>,
    /// While building: each key's place in `keys`.
    key_places: FxHashMap<u64, u32>,
    /// What its holes count from: the line, the byte.
    counts_line: bool,
    counts_byte: bool,
    /// Bytes besides the holes' numbers.
    literal: usize,
    /// The holes' values per base, sorted: the digits they take are counted per base, not per
    /// hole (a 3 MB file's outline has 47,000 holes).
    by_base: OnceLock<Vec<(From, Vec<u32>)>>,
}

/// The text as last written, and the start its numbers are for.
#[derive(Debug, Default)]
struct Text {
    bytes: Vec<u8>,
    holes: Vec<Hole>,
    filled: Option<Filled>,
}

/// A start, as far as a template's numbers depend on it.
#[derive(Debug, PartialEq)]
struct Filled {
    line: u32,
    byte: usize,
    /// The ordinals' bases, in the order of the template's keys.
    ordinals: Vec<u64>,
}

impl Template {
    fn building(&mut self) -> &mut Text {
        self.text.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    /// JSON text written as it is.
    pub fn raw(&mut self, json: &str) {
        self.literal += json.len();
        self.building().bytes.extend_from_slice(json.as_bytes());
    }

    pub fn uint(&mut self, n: u64) {
        self.literal += digits(n);
        write_uint(&mut self.building().bytes, n);
    }

    /// A JSON string, quoted and escaped.
    pub fn string(&mut self, text: &str) {
        let bytes = &mut self.building().bytes;
        let before = bytes.len();
        // Writing a `str` into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *bytes, text);
        self.literal += bytes.len() - before;
    }

    /// A value as serde writes it.
    pub fn json<T: serde::Serialize>(&mut self, value: &T) {
        let bytes = &mut self.building().bytes;
        let before = bytes.len();
        // Writing into a Vec fails only for values serde cannot write, which these are not.
        let _ = serde_json::to_writer(&mut *bytes, value);
        self.literal += bytes.len() - before;
    }

    /// The inside of a JSON string, escaped, without its quotes (for a string that goes on with
    /// a hole).
    pub fn string_part(&mut self, text: &str) {
        let start = self.building().bytes.len();
        self.string(text);
        let bytes = &mut self.building().bytes;
        bytes.pop();
        bytes.remove(start);
        self.literal -= 2;
    }

    /// A number written as `value` plus what `base` is for the segment.
    pub fn hole(&mut self, base: Base, value: u32) {
        self.by_base = OnceLock::new();
        let from = match base {
            Base::Line => {
                self.counts_line = true;
                From::Line
            }
            Base::Byte => {
                self.counts_byte = true;
                From::Byte
            }
            Base::Ordinal(key) => {
                if self.key_places.len() < self.keys.len() {
                    // Built on after `shrink`, which let them go.
                    self.key_places = self.keys.iter().zip(0..).map(|(k, i)| (*k, i)).collect();
                }
                let next = self.keys.len() as u32;
                let place = *self.key_places.entry(key).or_insert(next);
                if place == next {
                    self.keys.push(key);
                }
                From::Ordinal(place)
            }
        };
        let text = self.building();
        text.filled = None;
        text.holes.push(Hole {
            at: text.bytes.len() as u32,
            len: 0,
            value,
            from,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.literal == 0 && self.keys.is_empty() && !self.counts_line && !self.counts_byte
    }

    /// Gives back what the building reserved.
    pub fn shrink(&mut self) {
        self.key_places = FxHashMap::default();
        self.keys.shrink_to_fit();
        let text = self.building();
        text.bytes.shrink_to_fit();
        text.holes.shrink_to_fit();
    }

    /// What of `start` the numbers depend on.
    fn filled(&self, start: &Start<'_>) -> Filled {
        Filled {
            line: if self.counts_line { start.line } else { 0 },
            byte: if self.counts_byte { start.byte } else { 0 },
            ordinals: self.keys.iter().map(|key| ordinal(start, *key)).collect(),
        }
    }

    /// What a hole counting from `from` adds its value to, for a segment starting at `start`.
    fn base(&self, start: &Start<'_>, from: From) -> u64 {
        match from {
            From::Line => u64::from(start.line),
            From::Byte => start.byte as u64,
            From::Ordinal(place) => ordinal(start, self.keys[place as usize]),
        }
    }

    /// Whether the text's numbers are filled in for `start` already.
    fn is_filled_for(&self, filled: Option<&Filled>, start: &Start<'_>) -> bool {
        filled.is_some_and(|f| {
            (!self.counts_line || f.line == start.line)
                && (!self.counts_byte || f.byte == start.byte)
                && self
                    .keys
                    .iter()
                    .zip(&f.ordinals)
                    .all(|(key, base)| ordinal(start, *key) == *base)
        })
    }

    /// How many bytes [`Template::write`] writes for a segment starting at `start`.
    pub fn written_len(&self, start: &Start<'_>) -> usize {
        let text = lock(&self.text);
        if self.is_filled_for(text.filled.as_ref(), start) {
            return text.bytes.len();
        }
        let by_base = self.by_base.get_or_init(|| {
            let mut by_base: Vec<(From, Vec<u32>)> = Vec::new();
            for hole in &text.holes {
                match by_base.iter_mut().find(|(from, _)| *from == hole.from) {
                    Some((_, values)) => values.push(hole.value),
                    None => by_base.push((hole.from, vec![hole.value])),
                }
            }
            for (_, values) in &mut by_base {
                values.sort_unstable();
            }
            by_base
        });
        self.literal
            + by_base
                .iter()
                .map(|(from, values)| digits_of_all(self.base(start, *from), values))
                .sum::<usize>()
    }

    /// The text with its holes filled in for a segment starting at `start`.
    pub fn write(&self, out: &mut Vec<u8>, start: &Start<'_>) {
        let mut text = lock(&self.text);
        if !self.is_filled_for(text.filled.as_ref(), start) {
            let filled = self.filled(start);
            // Not filled for any start until it is for this one.
            text.filled = None;
            fill(&mut text, &filled);
            text.filled = Some(filled);
        }
        out.extend_from_slice(&text.bytes);
    }
}

/// Fills in the numbers of `text` for `filled`: in place while each keeps its digits (an edit
/// moves a segment by a few lines or bytes), else writing the text again.
fn fill(text: &mut Text, filled: &Filled) {
    let Text { bytes, holes, .. } = text;
    let mut scratch = [0u8; 20];
    let in_place = holes.iter().all(|hole| {
        let n = base(filled, hole.from) + u64::from(hole.value);
        let number = decimal(n, &mut scratch);
        let at = hole.at as usize;
        number.len() == usize::from(hole.len) && {
            bytes[at..at + number.len()].copy_from_slice(number);
            true
        }
    });
    if in_place {
        return;
    }
    let numbers = |hole: &Hole| digits(base(filled, hole.from) + u64::from(hole.value));
    let widths: usize = holes.iter().map(|hole| usize::from(hole.len)).sum();
    let len = bytes.len() - widths + holes.iter().map(numbers).sum::<usize>();
    let mut again = Vec::with_capacity(len);
    let mut from = 0;
    for hole in holes.iter_mut() {
        let (at, len) = (hole.at as usize, usize::from(hole.len));
        again.extend_from_slice(&bytes[from..at]);
        let number = decimal(
            base(filled, hole.from) + u64::from(hole.value),
            &mut scratch,
        );
        hole.at = again.len() as u32;
        hole.len = number.len() as u8;
        again.extend_from_slice(number);
        from = at + len;
    }
    again.extend_from_slice(&bytes[from..]);
    *bytes = again;
}

/// The chunks with `key` in the segments before `start`.
fn ordinal(start: &Start<'_>, key: u64) -> u64 {
    u64::from(start.ordinals.get(&key).copied().unwrap_or(0))
}

/// What a hole counting from `from` adds its value to.
fn base(filled: &Filled, from: From) -> u64 {
    match from {
        From::Line => u64::from(filled.line),
        From::Byte => filled.byte as u64,
        From::Ordinal(place) => filled.ordinals[place as usize],
    }
}

/// How many digits `base + v` take in decimal for every `v` of `sorted`: each at least as many as
/// the smallest has, and one more for each power of ten the larger ones reach.
fn digits_of_all(base: u64, sorted: &[u32]) -> usize {
    let (Some(&low), Some(&high)) = (sorted.first(), sorted.last()) else {
        return 0;
    };
    let least = digits(base + u64::from(low));
    let mut total = sorted.len() * least;
    for power in least as u32..digits(base + u64::from(high)) as u32 {
        let reach = 10u64.pow(power);
        total += sorted.len() - sorted.partition_point(|&v| base + u64::from(v) < reach);
    }
    total
}

/// How many digits `n` has in decimal.
fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// `n` in decimal.
pub fn write_uint(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(decimal(n, &mut [0; 20]));
}

/// `n`'s decimal digits, written at the end of `digits`.
fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &digits[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_are_filled_from_where_the_segment_starts() {
        let mut t = Template::default();
        t.raw("{\"line\":");
        t.hole(Base::Line, 3);
        t.raw(",\"id\":\"");
        t.string_part("fn:a\"b#");
        t.hole(Base::Ordinal(7), 1);
        t.raw("\",\"bytes\":[");
        t.hole(Base::Byte, 0);
        t.raw(",");
        t.uint(0);
        t.raw("]}");
        let ordinals = FxHashMap::from_iter([(7, 4)]);
        let mut out = Vec::new();
        t.write(
            &mut out,
            &Start {
                line: 10,
                byte: 18_446_744,
                ordinals: &ordinals,
            },
        );
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            r#"{"line":13,"id":"fn:a\"b#5","bytes":[18446744,0]}"#
        );
        let start = Start {
            line: 10,
            byte: 18_446_744,
            ordinals: &ordinals,
        };
        assert_eq!(t.written_len(&start), out.len());
        for n in [0, 9, 10, 99, 100, 12_345, u64::MAX] {
            assert_eq!(digits(n), n.to_string().len(), "{n}");
        }
        let mut n = Vec::new();
        write_uint(&mut n, u64::MAX);
        assert_eq!(n, u64::MAX.to_string().as_bytes());
    }

    /// The length counted per base is the length written, wherever the values and the starts
    /// fall against powers of ten.
    #[test]
    fn the_length_counted_is_the_length_written() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        for round in 0..300 {
            let mut t = Template::default();
            for _ in 0..next(40) {
                let base = match next(3) {
                    0 => Base::Line,
                    1 => Base::Byte,
                    _ => Base::Ordinal(next(3)),
                };
                // Values of every size, many near powers of ten.
                let value = 10u64
                    .pow(next(7) as u32)
                    .saturating_sub(next(3).min(1) * next(20));
                t.raw(",");
                t.hole(base, value as u32);
            }
            let ordinals = FxHashMap::from_iter((0..3).map(|k| (k, next(2_000) as u32)));
            let start = Start {
                line: 10u32.pow(next(6) as u32).saturating_sub(next(5) as u32),
                byte: next(1 << 24) as usize,
                ordinals: &ordinals,
            };
            // Counted before it is written, as an answer is.
            let counted = t.written_len(&start);
            let mut out = Vec::new();
            t.write(&mut out, &start);
            assert_eq!(counted, out.len(), "round {round}");
            // A hole added after a write is counted, and filled in, too.
            t.hole(Base::Line, 99_999);
            let counted = t.written_len(&start);
            let mut again = Vec::new();
            t.write(&mut again, &start);
            assert_eq!(counted, again.len(), "round {round}, one hole more");
            let mut line = Vec::new();
            write_uint(&mut line, u64::from(start.line) + 99_999);
            assert_eq!(again, [out, line].concat(), "round {round}, one hole more");
        }
    }

    /// Written for one start, then another, then the first again — as a segment is when edits
    /// move it and move it back — the text is each time what a template never written before
    /// writes for that start, and as long as counted.
    #[test]
    fn a_template_written_again_for_another_start_is_filled_in_again() {
        let build = |seed: u64| {
            let mut state = seed | 1;
            let mut next = |below: u64| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % below
            };
            let mut t = Template::default();
            for i in 0..next(30) {
                t.raw(if i % 2 == 0 { "{\"n\":" } else { "],[" });
                let base = match next(3) {
                    0 => Base::Line,
                    1 => Base::Byte,
                    _ => Base::Ordinal(next(4)),
                };
                t.hole(base, 10u32.pow(next(6) as u32) - 1 + next(2) as u32);
                t.string_part("é\"");
            }
            t.shrink();
            t
        };
        let ordinals = [
            FxHashMap::from_iter([(0, 0), (1, 9), (2, 99)]),
            FxHashMap::from_iter([(0, 1), (3, 100_000)]),
        ];
        let starts = [
            (0, 0, &ordinals[0]),
            (9, 99_999, &ordinals[0]),
            (9, 99_999, &ordinals[1]),
            (1_000_000, 7, &ordinals[1]),
            // Moved without a number changing its width: filled in place.
            (1_000_001, 8, &ordinals[1]),
            (5, 12_345, &ordinals[1]),
            (6, 12_346, &ordinals[1]),
        ];
        for seed in 0..200 {
            let kept = build(seed);
            for &(line, byte, ordinals) in starts.iter().chain(starts.iter().rev()) {
                let start = Start {
                    line,
                    byte,
                    ordinals,
                };
                // Counted before it is written, as an answer is.
                let counted = kept.written_len(&start);
                let (mut again, mut fresh) = (b"[".to_vec(), b"[".to_vec());
                kept.write(&mut again, &start);
                build(seed).write(&mut fresh, &start);
                assert_eq!(again, fresh, "seed {seed}, line {line}, byte {byte}");
                assert_eq!(counted + 1, again.len());
            }
        }
    }
}
