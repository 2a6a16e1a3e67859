//! Search terms: identifiers split on camelCase, PascalCase, snake_case and digits, lowercased,
//! so that `parseRope`, `parse_rope` and `ParseRope` all answer to "parse" and "rope".

use std::collections::BTreeSet;

/// The words of one identifier: `HTTPServer2Config` → `http`, `server`, `2`, `config`.
pub fn split_identifier(ident: &str) -> Vec<String> {
    let chars: Vec<char> = ident.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        if let Some(&prev) = word.chars().last().as_ref() {
            let next = chars.get(i + 1).copied();
            let boundary = (prev.is_lowercase() && c.is_uppercase())
                || (prev.is_alphabetic() && c.is_numeric())
                || (prev.is_numeric() && c.is_alphabetic())
                // The last capital of an acronym starts the next word: HTTPServer → HTTP, Server.
                || (prev.is_uppercase() && c.is_uppercase() && next.is_some_and(char::is_lowercase));
            if boundary {
                words.push(std::mem::take(&mut word));
            }
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words.into_iter().map(|w| w.to_lowercase()).collect()
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

/// The distinct identifiers of a text and their words, at most `cap` of them, in order of first
/// appearance (the full-text index ignores the order).
pub fn body_terms(text: &str, cap: usize) -> String {
    // Distinct identifiers first (most repeat), then their words: the tokenizer already splits
    // snake_case at underscores, so only identifiers with capitals need splitting here. Terms are
    // written straight into the result; only split words need a set of their own.
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut words: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut out = String::with_capacity(text.len() / 4);
    let mut count = 0;
    let push = |out: &mut String, term: &str| {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(term);
    };
    for ident in identifiers(text) {
        if count >= cap {
            break;
        }
        if ident.len() < 2 || ident.len() > 64 || !seen.insert(ident) {
            continue;
        }
        // The query splits words at capitals and digits; the tokenizer does neither.
        if ident
            .bytes()
            .any(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            || !ident.is_ascii()
        {
            for term in std::iter::once(ident.to_lowercase())
                .chain(split_identifier(ident).into_iter().filter(|w| w.len() > 1))
            {
                if seen.contains(term.as_str()) || !words.insert(term.clone()) {
                    continue;
                }
                push(&mut out, &term);
                count += 1;
            }
        } else if !words.contains(ident) {
            push(&mut out, ident);
            count += 1;
        }
    }
    out
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
