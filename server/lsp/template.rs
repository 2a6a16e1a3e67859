//! `Template`: JSON text with holes for the numbers that depend on where a segment of a document
//! now starts — its first line, its first byte, how many chunks of the same kind and path come
//! before it — so that an answer encoded for one segment is written again, number by number, after
//! edits elsewhere moved the segment. Bytes only: no protocol types, no I/O.

use std::sync::OnceLock;

use rustc_hash::FxHashMap;

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

#[derive(Clone, Copy, Debug)]
struct Hole {
    /// Where in the bytes the number goes.
    at: u32,
    value: u32,
    base: Base,
}

impl Base {
    /// What a hole's number is counted from, for a segment starting at `start`.
    fn at(self, start: &Start<'_>) -> u64 {
        match self {
            Base::Line => u64::from(start.line),
            Base::Byte => start.byte as u64,
            Base::Ordinal(key) => u64::from(start.ordinals.get(&key).copied().unwrap_or(0)),
        }
    }
}

impl Hole {
    fn base(&self, start: &Start<'_>) -> u64 {
        self.base.at(start)
    }
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
    bytes: Vec<u8>,
    holes: Vec<Hole>,
    /// The holes' values per base, sorted: the digits they take are counted per base, not per
    /// hole (a 3 MB file's outline has 47,000 holes, counted again for every answer).
    by_base: OnceLock<Vec<(Base, Vec<u32>)>>,
}

impl Template {
    /// JSON text written as it is.
    pub fn raw(&mut self, json: &str) {
        self.bytes.extend_from_slice(json.as_bytes());
    }

    pub fn uint(&mut self, n: u64) {
        write_uint(&mut self.bytes, n);
    }

    /// A JSON string, quoted and escaped.
    pub fn string(&mut self, text: &str) {
        // Writing a `str` into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.bytes, text);
    }

    /// A value as serde writes it.
    pub fn json<T: serde::Serialize>(&mut self, value: &T) {
        // Writing into a Vec fails only for values serde cannot write, which these are not.
        let _ = serde_json::to_writer(&mut self.bytes, value);
    }

    /// The inside of a JSON string, escaped, without its quotes (for a string that goes on with
    /// a hole).
    pub fn string_part(&mut self, text: &str) {
        let start = self.bytes.len();
        self.string(text);
        self.bytes.pop();
        self.bytes.remove(start);
    }

    /// A number written as `value` plus what `base` is for the segment.
    pub fn hole(&mut self, base: Base, value: u32) {
        self.by_base = OnceLock::new();
        self.holes.push(Hole {
            at: self.bytes.len() as u32,
            value,
            base,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Gives back what the building reserved.
    pub fn shrink(&mut self) {
        self.bytes.shrink_to_fit();
        self.holes.shrink_to_fit();
    }

    /// How many bytes [`Template::write`] writes for a segment starting at `start`.
    pub fn written_len(&self, start: &Start<'_>) -> usize {
        let by_base = self.by_base.get_or_init(|| {
            let mut by_base: Vec<(Base, Vec<u32>)> = Vec::new();
            for hole in &self.holes {
                match by_base.iter_mut().find(|(base, _)| *base == hole.base) {
                    Some((_, values)) => values.push(hole.value),
                    None => by_base.push((hole.base, vec![hole.value])),
                }
            }
            for (_, values) in &mut by_base {
                values.sort_unstable();
            }
            by_base
        });
        self.bytes.len()
            + by_base
                .iter()
                .map(|(base, values)| digits_of_all(base.at(start), values))
                .sum::<usize>()
    }

    /// The text with its holes filled in for a segment starting at `start`.
    pub fn write(&self, out: &mut Vec<u8>, start: &Start<'_>) {
        let mut from = 0;
        for hole in &self.holes {
            let at = hole.at as usize;
            out.extend_from_slice(&self.bytes[from..at]);
            write_uint(out, hole.base(start) + u64::from(hole.value));
            from = at;
        }
        out.extend_from_slice(&self.bytes[from..]);
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
pub fn write_uint(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
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
            let mut out = Vec::new();
            t.write(&mut out, &start);
            assert_eq!(t.written_len(&start), out.len(), "round {round}");
            // A hole added after a count is counted too.
            t.hole(Base::Line, 99_999);
            out.clear();
            t.write(&mut out, &start);
            assert_eq!(
                t.written_len(&start),
                out.len(),
                "round {round}, one hole more"
            );
        }
    }
}
