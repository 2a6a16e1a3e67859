//! `Template`: JSON text with holes for the numbers that depend on where a segment of a document
//! now starts — its first line, its first byte, how many chunks of the same kind and path come
//! before it — so that an answer encoded for one segment is written again, number by number, after
//! edits elsewhere moved the segment. Bytes only: no protocol types, no I/O.

use rustc_hash::FxHashMap;

/// What a hole's number is counted from.
#[derive(Clone, Copy, Debug)]
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

impl Hole {
    /// What this hole's number is counted from, for a segment starting at `start`.
    fn base(&self, start: &Start<'_>) -> u64 {
        match self.base {
            Base::Line => u64::from(start.line),
            Base::Byte => start.byte as u64,
            Base::Ordinal(key) => u64::from(start.ordinals.get(&key).copied().unwrap_or(0)),
        }
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
        self.bytes.len()
            + self
                .holes
                .iter()
                .map(|hole| digits(hole.base(start) + u64::from(hole.value)))
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
}
