//! Random edits of YAML text for the parser's property tests: runs of characters deleted or
//! duplicated, YAML punctuation inserted, single characters replaced, at random places.
//!
//! Shared by `tests/parser_fuzz.rs` (parsing and validation never panic) and the unit tests of
//! `yaml` (the loader agrees with its serde-saphyr oracle on broken input), which include this
//! file with `#[path]`.

use proptest::prelude::*;

/// One edit; positions are taken modulo the length of the text when it is applied.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Deletes up to `len` characters from `at`.
    Delete(usize, usize),
    /// Inserts the text at `at`.
    Insert(usize, String),
    /// Replaces the character at `at`.
    Replace(usize, char),
    /// Repeats up to `len` characters from `at` right after them.
    Duplicate(usize, usize),
}

/// An edit that inserts one of `insertions` (a strategy for YAML-ish snippets).
pub fn edit(insertions: impl Strategy<Value = String>) -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(a, l)| Edit::Delete(a, l)),
        (any::<usize>(), insertions).prop_map(|(a, s)| Edit::Insert(a, s)),
        (any::<usize>(), any::<char>()).prop_map(|(a, c)| Edit::Replace(a, c)),
        (any::<usize>(), 1usize..80).prop_map(|(a, l)| Edit::Duplicate(a, l)),
    ]
}

/// `text` with `edits` applied in order.
pub fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let n = chars.len().max(1);
        match e {
            Edit::Delete(at, len) => {
                let at = (at % n).min(chars.len());
                let end = (at + len).min(chars.len());
                chars.drain(at..end);
            }
            Edit::Insert(at, s) => {
                let at = (at % n).min(chars.len());
                chars.splice(at..at, s.chars());
            }
            Edit::Replace(at, c) => {
                if !chars.is_empty() {
                    let at = at % chars.len();
                    chars[at] = *c;
                }
            }
            Edit::Duplicate(at, len) => {
                let at = (at % n).min(chars.len());
                let end = (at + len).min(chars.len());
                let copy: Vec<char> = chars[at..end].to_vec();
                chars.splice(end..end, copy);
            }
        }
    }
    chars.into_iter().collect()
}
