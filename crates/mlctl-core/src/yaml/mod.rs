//! YAML text to a tree of located nodes, one tree per document.
//!
//! Every node and every mapping key remembers its line and column, so that later stages
//! (typed deserialization, semantic validation, `check` rules, JSON Schema validation) can
//! point at the exact place in the user's file.
//!
//! The tree is built straight from the events of [`fast`], a reader for the YAML that
//! manifests are made of, or, for the rest, of `granit-parser` (the parser inside
//! `serde-saphyr`): [`events`] reads granit-parser's events, records anchored nodes and
//! replays them for aliases, within budgets against nesting and alias bombs; [`build`] builds
//! the tree (duplicate keys, merge keys `<<`); [`resolve`] says what scalars mean (YAML 1.1
//! values as Kubernetes reads them, keys taken as written). The rules are those mlctl applied
//! when it parsed through serde-saphyr's serde machinery (twice the CPU time: see
//! BENCHMARKS.md); the tests compare both on every YAML file of the repository and on random
//! and mutated YAML.
//! Where they differ on purpose (clearer messages, no limit on the size of a stream), the tests
//! list it.
//!
//! This module does not know what the documents mean.

mod build;
mod events;
mod fast;
mod resolve;

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;

use crate::path::{FieldPath, Segment};

/// A 1-based line and column in a source text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column (in characters).
    pub column: u32,
}

impl Pos {
    /// Whether the position is known (line 0 stands for an unknown place).
    pub fn is_known(&self) -> bool {
        self.line > 0
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A located YAML node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// What it holds.
    pub value: Value,
}

/// The value of a [`Node`]. Scalars are resolved with the YAML 1.1 rules that Kubernetes
/// uses (`yes` is a boolean, `"1"` is a string, `1` an integer).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or an empty value.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number (or an integer too large for `i64`).
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<Entry>),
}

/// One key/value pair of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// Where the key is.
    pub key_pos: Pos,
    /// The value.
    pub value: Node,
}

/// A YAML syntax error (or a duplicate key, or an exceeded parser budget).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// `duplicate-key` for a key repeated in a mapping, `yaml-syntax` otherwise.
    pub code: &'static str,
    /// Where the parser stopped.
    pub pos: Pos,
    /// What it found, without the location.
    pub message: String,
}

/// Parses all documents of a YAML stream. Empty documents (and documents that are just null)
/// are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, SyntaxError> {
    if let Some(docs) = fast::parse(text) {
        return Ok(docs);
    }
    let mut events = events::Events::new(text);
    let mut builder = build::Builder::new();
    let mut docs = Vec::new();
    while let Some(item) = events.next()? {
        add(&mut builder, &mut docs, item)?;
    }
    Ok(docs)
}

/// Feeds `item` to `builder`; a complete document goes to `docs`, unless it is just null.
fn add<'a>(
    builder: &mut build::Builder<'a>,
    docs: &mut Vec<Node>,
    item: events::Item<'a>,
) -> Result<(), SyntaxError> {
    if builder.idle()
        && let events::Ev::Scalar { text, style, tag } = &item.ev
        && resolve::is_null(events::Ev::tag_kind(tag.as_ref()), text, *style)
    {
        return Ok(());
    }
    if let Some(doc) = builder.feed(item)? {
        docs.push(doc);
    }
    Ok(())
}

impl Node {
    /// A short English name of the node's type, for messages ("a mapping", "a string").
    pub fn type_name(&self) -> &'static str {
        self.value.type_name()
    }

    /// The value of `key` if this node is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The entry for `key` if this node is a mapping that has it.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    /// The string if this node is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The entries if this node is a mapping.
    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(e) => Some(e),
            _ => None,
        }
    }

    /// The items if this node is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The items of the sequence under `key` of this mapping: none when the key is absent or
    /// its value is not a sequence.
    pub fn seq(&self, key: &str) -> &[Node] {
        self.get(key).and_then(Node::as_seq).unwrap_or_default()
    }

    /// The scalar as text (strings as they are, numbers and booleans as YAML writes them).
    pub fn scalar_text(&self) -> Option<Cow<'_, str>> {
        match &self.value {
            Value::Str(s) => Some(Cow::Borrowed(s)),
            Value::Int(i) => Some(Cow::Owned(i.to_string())),
            Value::Float(f) => Some(Cow::Owned(format_float(*f))),
            Value::Bool(b) => Some(Cow::Owned(b.to_string())),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// The node at `path`, if any.
    pub fn at(&self, path: &FieldPath) -> Option<&Node> {
        let mut node = self;
        for seg in path.segments() {
            node = match (seg, &node.value) {
                (Segment::Key(k), Value::Map(_)) => node.get(k)?,
                (Segment::Index(i), Value::Seq(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The position to report for `path`: the key of the deepest existing field on the path
    /// (a field that is missing is reported at its parent's key). For a path that ends in a
    /// sequence item, the item itself.
    pub fn locate(&self, path: &FieldPath) -> Pos {
        let mut node = self;
        let mut pos = self.pos;
        for seg in path.segments() {
            match (seg, &node.value) {
                (Segment::Key(k), Value::Map(_)) => match node.entry(k) {
                    Some(entry) => {
                        pos = entry.key_pos;
                        node = &entry.value;
                    }
                    None => break,
                },
                (Segment::Index(i), Value::Seq(items)) => match items.get(*i) {
                    Some(item) => {
                        pos = item.pos;
                        node = item;
                    }
                    None => break,
                },
                _ => break,
            }
        }
        pos
    }

    /// The position of the value at `path` (rather than of its key), falling back to
    /// [`Node::locate`] when the path does not exist.
    pub fn locate_value(&self, path: &FieldPath) -> Pos {
        self.at(path).map_or_else(|| self.locate(path), |n| n.pos)
    }

    /// Converts the tree to JSON (for JSON Schema validation and pass-through subtrees).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

impl Value {
    /// A short English name of the type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Formats a float the way a user would have written it (`0.5`, `2`, `1e-9`).
pub fn format_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.0}")
    } else {
        f.to_string()
    }
}
