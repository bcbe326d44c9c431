//! YAML text to a tree of located nodes, one tree per document.
//!
//! Every node and every mapping key remembers its line and column, so that later stages
//! (typed deserialization, semantic validation, `check` rules, JSON Schema validation) can
//! point at the exact place in the user's file. Parsing uses `serde-saphyr`: duplicate keys,
//! syntax errors and resource budgets (billion laughs) are its errors, with their location.
//!
//! This module does not know what the documents mean.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{MessageFormatter, Spanned};

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
    fn from_location(loc: &serde_saphyr::Location) -> Self {
        Self {
            line: u32::try_from(loc.line()).unwrap_or(u32::MAX),
            column: u32::try_from(loc.column()).unwrap_or(u32::MAX),
        }
    }

    /// Whether the position is known (serde-saphyr reports line 0 for unknown places).
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

/// Parses all documents of a YAML stream. Empty documents are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, SyntaxError> {
    // Comments are validated as syntax but not captured: nothing reads them, and capturing
    // them is measurable on large manifests.
    let mut options = serde_saphyr::Options::default();
    options.emit_comments = false;
    let docs: Vec<Option<Node>> = serde_saphyr::from_str_multiple_with_options::<
        Option<Node>,
        Vec<Option<Node>>,
    >(text, options)
    .map_err(syntax_error)?;
    Ok(docs.into_iter().flatten().collect())
}

fn syntax_error(err: serde_saphyr::Error) -> SyntaxError {
    let inner = err.without_snippet();
    let pos = inner
        .location()
        .map(|l| Pos::from_location(&l))
        .unwrap_or_default();
    let message = serde_saphyr::DefaultMessageFormatter
        .format_message(inner)
        .into_owned();
    // serde-saphyr's advice about its own options is not for our users
    match message.strip_prefix("duplicate mapping key: ") {
        Some(rest) => {
            let key = rest
                .split(", set DuplicateKeyPolicy")
                .next()
                .unwrap_or(rest);
            SyntaxError {
                code: "duplicate-key",
                pos,
                message: format!("duplicate key `{key}`: each key may appear once in a mapping"),
            }
        }
        None => SyntaxError {
            code: "yaml-syntax",
            pos,
            message,
        },
    }
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

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(d)?;
        Ok(Node {
            pos: Pos::from_location(&spanned.referenced),
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_i128<E>(self, i: i128) -> Result<Value, E> {
        Ok(i64::try_from(i).map_or(Value::Float(i as f64), Value::Int))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }
    fn visit_u128<E>(self, u: u128) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Str(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Str(s))
    }
    fn visit_bytes<E>(self, b: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(b).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
            let value = map.next_value::<Node>()?;
            entries.push(Entry {
                key: key.value.0,
                key_pos: Pos::from_location(&key.referenced),
                value,
            });
        }
        Ok(Value::Map(entries))
    }
}

/// A mapping key as text, as written: YAML 1.1 would read the keys `n`, `yes` or `on` as
/// booleans (the "Norway problem"); mlctl's keys are names, so they are taken as the text.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<KeyText, E> {
                Ok(KeyText(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(format_float(v)))
            }
            fn visit_unit<E>(self) -> Result<KeyText, E> {
                Ok(KeyText(String::new()))
            }
        }
        d.deserialize_string(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(text: &str) -> Node {
        let mut docs = parse_documents(text).expect("parses");
        assert_eq!(docs.len(), 1);
        docs.remove(0)
    }

    #[test]
    fn scalars_resolve_like_kubernetes() {
        let n = parse_one("a: 1\nb: \"1\"\nc: yes\nd: 0.5\ne: ~\nf: 500m\n");
        assert_eq!(n.get("a").map(|n| &n.value), Some(&Value::Int(1)));
        assert_eq!(n.get("b").map(|n| &n.value), Some(&Value::Str("1".into())));
        assert_eq!(n.get("c").map(|n| &n.value), Some(&Value::Bool(true)));
        assert_eq!(n.get("d").map(|n| &n.value), Some(&Value::Float(0.5)));
        assert_eq!(n.get("e").map(|n| &n.value), Some(&Value::Null));
        assert_eq!(
            n.get("f").map(|n| &n.value),
            Some(&Value::Str("500m".into()))
        );
    }

    #[test]
    fn positions_of_keys_and_values() {
        let n = parse_one("spec:\n  steps:\n    - name: a\n      run: [x, y]\n");
        let path = FieldPath::parse("spec.steps[0].run[1]");
        assert_eq!(
            n.locate(&path),
            Pos {
                line: 4,
                column: 16
            }
        );
        assert_eq!(
            n.locate(&FieldPath::parse("spec.steps[0].run")),
            Pos { line: 4, column: 7 }
        );
        // a missing field is reported at its nearest existing parent
        assert_eq!(
            n.locate(&FieldPath::parse("spec.steps[0].missing")),
            Pos { line: 3, column: 7 }
        );
    }

    #[test]
    fn multiple_documents_skip_empty_ones() {
        let docs =
            parse_documents("---\n# only a comment\n---\na: 1\n---\nb: 2\n---\n").expect("parses");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].pos.line, 6);
    }

    #[test]
    fn duplicate_keys_are_errors_with_location() {
        let err = parse_documents("a: 1\nb: 2\na: 3\n").expect_err("duplicate");
        assert_eq!(err.pos, Pos { line: 3, column: 1 });
        assert_eq!(err.code, "duplicate-key");
        assert_eq!(
            err.message,
            "duplicate key `a`: each key may appear once in a mapping"
        );
    }

    #[test]
    fn syntax_errors_have_location() {
        let err = parse_documents("a: [1, 2\nb: 3\n").expect_err("syntax");
        assert_eq!(err.pos.line, 2);
    }

    #[test]
    fn keys_are_taken_as_written() {
        let n = parse_one("n: 1\nyes: 2\non: 3\n10: 4\n");
        let keys: Vec<&str> = n
            .as_map()
            .expect("map")
            .iter()
            .map(|e| e.key.as_str())
            .collect();
        assert_eq!(keys, ["n", "yes", "on", "10"]);
    }

    #[test]
    fn comments_are_skipped_everywhere() {
        let docs = parse_documents(
            "# head
a: 1 # trailing
b: # before a block
  - x # item
  # between
  - z
---
# only
c: 'q' # end
",
        )
        .expect("parses");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].to_json().to_string(), r#"{"a":1,"b":["x","z"]}"#);
        assert_eq!(
            docs[0].at(&FieldPath::parse("b[1]")).map(|n| n.pos.line),
            Some(6)
        );
        assert_eq!(docs[1].to_json().to_string(), r#"{"c":"q"}"#);
    }

    #[test]
    fn to_json_keeps_order_and_types() {
        let n = parse_one("z: 1\na: [true, x, 1.5]\n");
        assert_eq!(n.to_json().to_string(), r#"{"z":1,"a":[true,"x",1.5]}"#);
    }
}
