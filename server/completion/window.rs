//! A completion prompt fitted to the model's context window: `narrow` gives the prompt builder
//! smaller settings (related code gives first, then the text after the cursor, then the text
//! before it), and `trim` cuts what was built, counted exactly, from its far ends (where the
//! related code sits, above the file's own text) until it fits. Pure: the caller says how much
//! room there is and how tokens are counted.

use super::{Built, CompletionConfig};

/// Bytes of code a token stands for, at the least (real code runs 3–4).
const BYTES_PER_TOKEN: usize = 3;

/// `config` narrowed so that a prompt built under it is about `room` tokens at most.
pub fn narrow(config: &CompletionConfig, room: u32) -> CompletionConfig {
    let mut narrowed = config.clone();
    let text = (config.prefix_bytes + config.suffix_bytes).div_ceil(BYTES_PER_TOKEN);
    let text = u32::try_from(text).unwrap_or(u32::MAX);
    narrowed.context_tokens = config.context_tokens.min(room.saturating_sub(text));
    let left = room.saturating_sub(narrowed.context_tokens) as usize * BYTES_PER_TOKEN;
    if config.prefix_bytes + config.suffix_bytes > left {
        narrowed.suffix_bytes = config.suffix_bytes.min(left / 4);
        narrowed.prefix_bytes = config.prefix_bytes.min(left - narrowed.suffix_bytes);
    }
    narrowed
}

/// Cuts `built` until `count(prefix) + count(suffix)` is at most `room`: the prefix loses lines
/// from its start, the suffix from its end, each in proportion to what is over.
pub fn trim(built: &mut Built, room: u32, count: impl Fn(&str) -> u64) {
    for _ in 0..8 {
        let tokens = count(&built.prefix) + count(&built.suffix);
        if tokens <= u64::from(room) {
            return;
        }
        // Keep a little under the share that fits, so the loop ends in a step or two.
        let keep = u64::from(room) as f64 / tokens as f64 * 0.95;
        let prefix_keep = (built.prefix.len() as f64 * keep) as usize;
        let suffix_keep = (built.suffix.len() as f64 * keep) as usize;
        let mut from = floor(&built.prefix, built.prefix.len() - prefix_keep);
        if let Some(line) = built.prefix[from..].find('\n') {
            // Start at a line, unless that leaves nothing.
            if from + line + 1 < built.prefix.len() {
                from += line + 1;
            }
        }
        built.prefix.drain(..from);
        let mut to = floor(&built.suffix, suffix_keep);
        if let Some(line) = built.suffix[..to].rfind('\n') {
            to = line + 1;
        }
        built.suffix.truncate(to);
    }
}

/// The largest char boundary of `text` at or below `at`.
fn floor(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::completion::Shape;

    fn built(prefix: &str, suffix: &str) -> Built {
        Built {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
            shape: Shape {
                multiline: false,
                after: String::new(),
                indent: 0,
            },
            files: Vec::new(),
            chunks: Vec::new(),
        }
    }

    #[test]
    fn related_code_gives_first_then_the_suffix_then_the_prefix() {
        let config = CompletionConfig::default(); // 6000 + 2000 bytes, 1024 tokens of context
        assert_eq!(narrow(&config, 100_000), config);
        let n = narrow(&config, 3_000);
        assert_eq!(
            (n.prefix_bytes, n.suffix_bytes, n.context_tokens),
            (6000, 2000, 333)
        );
        let n = narrow(&config, 2_000);
        assert_eq!(
            (n.prefix_bytes, n.suffix_bytes, n.context_tokens),
            (4500, 1500, 0)
        );
        let n = narrow(&config, 0);
        assert_eq!(
            (n.prefix_bytes, n.suffix_bytes, n.context_tokens),
            (0, 0, 0)
        );
    }

    #[test]
    fn a_built_prompt_is_cut_from_its_far_ends_at_lines() {
        let count = |t: &str| t.len() as u64 / 4;
        let line = "let value = compute(1, 2, 3);\n";
        let mut b = built(
            &format!("// related\n{}fn f() {{ let x", line.repeat(40)),
            &format!(" = 1;\n{}", line.repeat(40)),
        );
        let (prefix, suffix) = (b.prefix.clone(), b.suffix.clone());
        trim(&mut b, 200, count);
        assert!(count(&b.prefix) + count(&b.suffix) <= 200);
        // The cursor's surroundings stay; whole lines went from the far ends.
        assert!(b.prefix.ends_with("fn f() { let x") && prefix.ends_with(&b.prefix));
        assert!(b.suffix.starts_with(" = 1;\n") && suffix.starts_with(&b.suffix));
        assert!(b.prefix.starts_with("let value") && b.suffix.ends_with('\n'));
        assert!(!b.prefix.contains("related"));
        // Already within room: untouched.
        let mut small = built("a", "b");
        trim(&mut small, 10, count);
        assert_eq!((small.prefix.as_str(), small.suffix.as_str()), ("a", "b"));
    }
}
