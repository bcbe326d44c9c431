//! The located YAML tree as a JSON instance for `jsonschema`, read in place: validating an
//! object no longer makes a `serde_json` copy of it (one allocation per key and string, a hash
//! per key) for every document of `mlctl check`.
//!
//! The instance is the one [`super::validate`] checks: the tree's JSON ([`Node::to_json`])
//! without the mapping entries whose value is `null` (the API server ignores them as omitted
//! fields). A float that JSON cannot hold (`.nan`, `.inf`) is `null`, as `to_json` makes it.
//! Numbers are reported through `serde_json::Number`, exactly as the copy held them, so every
//! keyword and every error message sees the same values.

use std::borrow::Cow;

use jsonschema::JsonType;
use jsonschema::json::{Array, Json, JsonNumber, Node as JsonNode, NodeIdentity, Object};
use mlctl_core::yaml::{Entry, Node, Pos, Value};
use serde_json::{Number, Value as JsonValue};

/// The YAML tree as a `jsonschema` instance representation.
pub(super) struct Tree;

impl Json for Tree {
    type Node<'a> = &'a Node;
    type PreparedKey = String;
    type StringBuffer = Option<Node>;

    // As for `serde_json` with ordered maps: small objects are scanned, so look keys up the same
    // way it does (and validate in the same order).
    const KEYS_PER_LOOKUP: usize = 2;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> String {
        key.to_owned()
    }

    fn with_string_node<T>(
        buffer: &mut Option<Node>,
        string: &str,
        f: impl FnOnce(&Node) -> T,
    ) -> T {
        f(buffer.insert(Node {
            pos: Pos::default(),
            value: Value::Str(string.to_owned()),
        }))
    }
}

/// Whether `node` is `null` as JSON.
fn is_json_null(node: &Node) -> bool {
    match node.value {
        Value::Null => true,
        Value::Float(f) => Number::from_f64(f).is_none(),
        _ => false,
    }
}

/// The number `node` is as JSON, if it is one.
fn number(node: &Node) -> Option<Number> {
    match node.value {
        Value::Int(i) => Some(Number::from(i)),
        Value::Float(f) => Number::from_f64(f),
        _ => None,
    }
}

/// `node` as the `serde_json` value it stands for (error messages, `enum`, `const`).
pub(super) fn to_json(node: &Node) -> JsonValue {
    match &node.value {
        Value::Seq(items) => JsonValue::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => JsonValue::Object(
            entries
                .iter()
                .filter(|e| !is_json_null(&e.value))
                .map(|e| (e.key.clone(), to_json(&e.value)))
                .collect(),
        ),
        _ => node.to_json(),
    }
}

/// A number of the tree, as `serde_json` holds it.
pub(super) struct TreeNumber(Number);

impl JsonNumber for TreeNumber {
    fn as_u64(&self) -> Option<u64> {
        JsonNumber::as_u64(&self.0)
    }
    fn as_i64(&self) -> Option<i64> {
        JsonNumber::as_i64(&self.0)
    }
    fn as_f64(&self) -> Option<f64> {
        JsonNumber::as_f64(&self.0)
    }
    fn as_str(&self) -> Cow<'_, str> {
        JsonNumber::as_str(&self.0)
    }
    fn to_number(&self) -> Cow<'_, Number> {
        Cow::Borrowed(&self.0)
    }
    fn is_integer(&self) -> bool {
        JsonNumber::is_integer(&self.0)
    }
    fn is_written_as_integer(&self) -> bool {
        JsonNumber::is_written_as_integer(&self.0)
    }
}

impl<'a> JsonNode<'a, Tree> for &'a Node {
    type Object = Members<'a>;
    type Array = &'a [Node];
    type Number = TreeNumber;

    fn as_object(&self) -> Option<Members<'a>> {
        match &self.value {
            Value::Map(entries) => Some(Members(entries)),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<&'a [Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        match &self.value {
            Value::Str(s) => Some(Cow::Borrowed(s)),
            _ => None,
        }
    }

    fn as_number(&self) -> Option<TreeNumber> {
        number(self).map(TreeNumber)
    }

    fn as_boolean(&self) -> Option<bool> {
        match self.value {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        is_json_null(self)
    }

    fn json_type(&self) -> JsonType {
        match &self.value {
            Value::Null => JsonType::Null,
            Value::Bool(_) => JsonType::Boolean,
            Value::Int(_) => JsonType::Number,
            Value::Float(f) if Number::from_f64(*f).is_some() => JsonType::Number,
            Value::Float(_) => JsonType::Null,
            Value::Str(_) => JsonType::String,
            Value::Seq(_) => JsonType::Array,
            Value::Map(_) => JsonType::Object,
        }
    }

    fn equals_value(&self, expected: &JsonValue) -> bool {
        match (&self.value, expected) {
            (Value::Str(s), JsonValue::String(e)) => s == e,
            (Value::Str(_), _) => false,
            _ => jsonschema::json::cmp::equal(&to_json(self), expected),
        }
    }

    fn to_value(&self) -> Cow<'a, JsonValue> {
        Cow::Owned(to_json(self))
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::new(std::ptr::from_ref::<Node>(*self) as usize))
    }
}

/// The members of a mapping: its entries whose value is not `null`.
#[derive(Clone, Copy)]
pub(super) struct Members<'a>(&'a [Entry]);

impl<'a> Object<'a, Tree> for Members<'a> {
    type Node = &'a Node;
    type MemberName = &'a str;
    type MembersIter = MembersIter<'a>;

    fn len(&self) -> usize {
        self.0.iter().filter(|e| !is_json_null(&e.value)).count()
    }

    fn get(&self, key: &String) -> Option<&'a Node> {
        self.0
            .iter()
            .find(|e| e.key == *key)
            .map(|e| &e.value)
            .filter(|v| !is_json_null(v))
    }

    fn members(&self) -> MembersIter<'a> {
        MembersIter(self.0.iter())
    }
}

/// The members of a mapping, in source order.
pub(super) struct MembersIter<'a>(std::slice::Iter<'a, Entry>);

impl<'a> Iterator for MembersIter<'a> {
    type Item = (&'a str, &'a Node);

    fn next(&mut self) -> Option<Self::Item> {
        self.0
            .by_ref()
            .find(|e| !is_json_null(&e.value))
            .map(|e| (e.key.as_str(), &e.value))
    }
}

impl<'a> Array<'a, Tree> for &'a [Node] {
    type Node = &'a Node;
    type ElementsIter = std::slice::Iter<'a, Node>;

    fn len(&self) -> usize {
        <[Node]>::len(self)
    }

    fn elements(&self) -> std::slice::Iter<'a, Node> {
        self.iter()
    }
}
