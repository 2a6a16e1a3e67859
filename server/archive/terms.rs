//! Search terms: identifiers split on camelCase, PascalCase, snake_case and digits, lowercased,
//! so that `parseRope`, `parse_rope` and `ParseRope` all answer to "parse" and "rope".

use std::collections::BTreeSet;

use rustc_hash::FxHashSet;

/// The words of one identifier: `HTTPServer2Config` → `http`, `server`, `2`, `config`.
pub fn split_identifier(ident: &str) -> Vec<String> {
    let mut words = Vec::new();
    each_word(ident, |word| words.push(word.to_lowercase()));
    words
}

/// Calls `each` with every word of `ident`, as written (not lowercased).
fn each_word<'a>(ident: &'a str, mut each: impl FnMut(&'a str)) {
    // The current word starts at `start`; `prev` is its last character.
    let mut start = None;
    let mut prev = ' ';
    let mut chars = ident.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !c.is_alphanumeric() {
            if let Some(s) = start.take() {
                each(&ident[s..i]);
            }
            continue;
        }
        match start {
            None => start = Some(i),
            Some(s) => {
                let next = chars.peek().map(|&(_, n)| n);
                let boundary = (prev.is_lowercase() && c.is_uppercase())
                    || (prev.is_alphabetic() && c.is_numeric())
                    || (prev.is_numeric() && c.is_alphabetic())
                    // The last capital of an acronym starts the next word: HTTPServer → HTTP,
                    // Server.
                    || (prev.is_uppercase()
                        && c.is_uppercase()
                        && next.is_some_and(char::is_lowercase));
                if boundary {
                    each(&ident[s..i]);
                    start = Some(i);
                }
            }
        }
        prev = c;
    }
    if let Some(s) = start {
        each(&ident[s..]);
    }
}

/// Terms for a name: the whole name lowercased and its words.
pub fn name_terms(names: &[&str]) -> String {
    let mut terms = BTreeSet::new();
    for name in names {
        for ident in identifiers(name) {
            terms.insert(ident.to_lowercase());
            terms.extend(split_identifier(ident));
        }
    }
    terms.into_iter().collect::<Vec<_>>().join(" ")
}

/// The body terms of many texts, one text after another, reusing the sets they need.
#[derive(Default)]
pub struct BodyTerms<'a> {
    seen: FxHashSet<&'a str>,
    words: FxHashSet<Box<str>>,
    lower: String,
}

impl<'a> BodyTerms<'a> {
    /// The distinct identifiers of a text and their words, at most `cap` of them, in order of
    /// first appearance (the full-text index ignores the order). The text may come in pieces
    /// (an identifier never spans two).
    pub fn terms(&mut self, pieces: impl IntoIterator<Item = &'a str>, cap: usize) -> String {
        // Distinct identifiers first (most repeat), then their words: the tokenizer already
        // splits snake_case at underscores, so only identifiers with capitals need splitting
        // here. Terms are written straight into the result; only split and lowercased words need
        // a set of their own.
        let BodyTerms { seen, words, lower } = self;
        seen.clear();
        words.clear();
        let mut out = Terms {
            text: String::new(),
            count: 0,
        };
        for ident in pieces.into_iter().flat_map(identifiers) {
            if out.count >= cap {
                break;
            }
            if ident.len() < 2 || ident.len() > 64 || !seen.insert(ident) {
                continue;
            }
            if needs_words(ident) {
                // Words of one character (once lowercased) are left out; the whole identifier
                // is not.
                let mut term = |word: &str, shortest: usize| {
                    lowercase_into(lower, word);
                    if lower.len() < shortest {
                        return;
                    }
                    // A plain identifier seen before was written as it is.
                    let written = !needs_words(lower) && seen.contains(lower.as_str());
                    if !written && !words.contains(lower.as_str()) {
                        words.insert(lower.as_str().into());
                        out.push(lower);
                    }
                };
                term(ident, 0);
                each_word(ident, |word| term(word, 2));
            } else if !words.contains(ident) {
                out.push(ident);
            }
        }
        out.text
    }
}

/// Space-separated terms and how many.
struct Terms {
    text: String,
    count: usize,
}

impl Terms {
    fn push(&mut self, term: &str) {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        self.text.push_str(term);
        self.count += 1;
    }
}

/// Whether an identifier is written lowercased and with its words rather than as it is: the
/// query splits words at capitals and digits, the tokenizer does neither, and only ASCII is
/// lowercased alike by both.
fn needs_words(ident: &str) -> bool {
    ident
        .bytes()
        .any(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || !b.is_ascii())
}

/// `word` lowercased into `buf`.
fn lowercase_into(buf: &mut String, word: &str) {
    buf.clear();
    if word.is_ascii() {
        buf.extend(word.bytes().map(|b| b.to_ascii_lowercase() as char));
    } else {
        buf.push_str(&word.to_lowercase());
    }
}

/// Runs of letters, digits and underscores that start with a letter or underscore.
pub fn identifiers(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
        })
}

/// An FTS5 query for what a user typed: every word required, the last one as a prefix (it may
/// still be being typed).
/// `None` when there is nothing to search for.
pub fn match_expression(query: &str) -> Option<String> {
    let mut words: Vec<String> = Vec::new();
    for ident in query.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        for word in split_identifier(ident) {
            let word: String = word.chars().filter(|c| c.is_alphanumeric()).collect();
            if !word.is_empty() && !words.contains(&word) {
                words.push(word);
            }
        }
    }
    if words.is_empty() {
        return None;
    }
    Some(
        words
            .iter()
            .map(|w| format!("\"{w}\"*"))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_terms(text: &str, cap: usize) -> String {
        BodyTerms::default().terms([text], cap)
    }

    #[test]
    fn splits_identifiers_in_every_convention() {
        assert_eq!(split_identifier("parseRope"), ["parse", "rope"]);
        assert_eq!(split_identifier("parse_rope"), ["parse", "rope"]);
        assert_eq!(
            split_identifier("HTTPServer2Config"),
            ["http", "server", "2", "config"]
        );
        assert_eq!(split_identifier("ÉtéLong"), ["été", "long"]);
        assert_eq!(split_identifier("__init__"), ["init"]);
        assert_eq!(
            name_terms(&["DocumentStore::open"]),
            "document documentstore open store"
        );
        assert_eq!(
            body_terms("let x = self.rope_len(); // a", 10),
            "let self rope_len"
        );
        assert_eq!(body_terms("parseRope(x)", 10), "parserope parse rope");
        assert_eq!(body_terms("Rope rope ROPE", 10), "rope");
        // Identifiers that lowercase to themselves but hold digits or other scripts are terms
        // too, not only their words.
        assert_eq!(body_terms("value_3 + x", 10), "value_3 value");
        assert_eq!(body_terms("東京タワー; été", 10), "東京タワー été");
        // One-character words are left out by their lowercased length (the Kelvin sign is three
        // bytes, its lowercase one).
        assert_eq!(body_terms("xK", 10), "xk");
        assert_eq!(
            match_expression("parseRope"),
            Some("\"parse\"* \"rope\"*".into())
        );
        assert_eq!(match_expression("  ::  "), None);
        assert_eq!(
            match_expression("a\"b OR c"),
            Some("\"a\"* \"b\"* \"or\"* \"c\"*".into())
        );
    }
}
