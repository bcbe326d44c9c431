//! Typed deserialization from a located YAML tree ([`crate::yaml::Node`]).
//!
//! A serde `Deserializer` over the tree that knows, at every step, the field path and the
//! position it is at, so the first error in a document comes out as a [`DeError`] with both,
//! and with the structured facts (the unknown field and the valid ones, the expected and the
//! found type) that make a good message and a "did you mean" hint.

use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess,
    SeqAccess, VariantAccess, Visitor,
};

use crate::diag::{Diagnostic, did_you_mean};
use crate::path::FieldPath;
use crate::yaml::{Entry, Node, Pos, Value};

/// The first error found while deserializing a document.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    /// The field the error is about (for an unknown field: the mapping that has it).
    pub path: FieldPath,
    /// Where it is.
    pub pos: Pos,
    /// What is wrong.
    pub kind: DeErrorKind,
    located: bool,
}

/// The kinds of deserialization errors.
#[derive(Debug, Clone, PartialEq)]
pub enum DeErrorKind {
    /// A key that the type does not have.
    UnknownField {
        /// The key found.
        field: String,
        /// The keys the type has.
        expected: &'static [&'static str],
    },
    /// A required key that is absent.
    MissingField(&'static str),
    /// A value of the wrong type (`a string` where `a list` was expected).
    InvalidType {
        /// What was found.
        found: String,
        /// What was expected.
        expected: String,
    },
    /// A value of the right type but not allowed (`-1` for a count).
    InvalidValue {
        /// What was found.
        found: String,
        /// What was expected.
        expected: String,
    },
    /// A string that is not one of an enumeration's values.
    UnknownVariant {
        /// The value found.
        variant: String,
        /// The allowed values.
        expected: &'static [&'static str],
    },
    /// Anything else (a bad quantity, a bad duration), as a sentence.
    Custom(String),
}

impl DeError {
    fn new(kind: DeErrorKind) -> Self {
        Self {
            path: FieldPath::root(),
            pos: Pos::default(),
            kind,
            located: false,
        }
    }

    /// Records where the error is, unless a deeper level already did.
    fn locate(mut self, path: &FieldPath, pos: Pos) -> Self {
        if !self.located {
            self.path = path.clone();
            self.pos = pos;
            self.located = true;
        }
        self
    }

    /// The stable diagnostic code of this error.
    pub fn code(&self) -> &'static str {
        match self.kind {
            DeErrorKind::UnknownField { .. } => "unknown-field",
            DeErrorKind::MissingField(_) => "missing-field",
            DeErrorKind::InvalidType { .. } => "invalid-type",
            DeErrorKind::InvalidValue { .. } | DeErrorKind::Custom(_) => "invalid-value",
            DeErrorKind::UnknownVariant { .. } => "unknown-value",
        }
    }

    /// A hint for fixing it, where there is a useful one.
    pub fn hint(&self) -> Option<String> {
        let suggest =
            |word: &str, candidates: &'static [&'static str], what: &str| match did_you_mean(
                word,
                candidates.iter().copied(),
            ) {
                Some(close) => Some(format!("did you mean `{close}`?")),
                None if candidates.is_empty() => None,
                None => Some(format!("{what}: {}", candidates.join(", "))),
            };
        match &self.kind {
            DeErrorKind::UnknownField { field, expected } => {
                suggest(field, expected, "valid fields are")
            }
            DeErrorKind::UnknownVariant { variant, expected } => {
                suggest(variant, expected, "valid values are")
            }
            DeErrorKind::InvalidType { found, expected }
                if expected == "a string" && !found.starts_with("a ") =>
            {
                Some("quote the value to make it a string".into())
            }
            DeErrorKind::InvalidType { found, expected }
                if expected == "a list" && found.starts_with("the string") =>
            {
                Some("write a list: [a, b], or one `- item` per line".into())
            }
            _ => None,
        }
    }

    /// The error as a diagnostic (without file; the caller places it).
    pub fn to_diagnostic(&self) -> Diagnostic {
        let mut d = Diagnostic::error(self.code(), self.path.clone(), self.to_string());
        d.pos = self.pos;
        d.hint = self.hint();
        d
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            DeErrorKind::UnknownField { field, .. } => write!(f, "unknown field `{field}`"),
            DeErrorKind::MissingField(field) => write!(f, "missing required field `{field}`"),
            DeErrorKind::InvalidType { found, expected } => {
                write!(f, "expected {expected}, found {found}")
            }
            DeErrorKind::InvalidValue { found, expected } => {
                write!(f, "expected {expected}, found {found}")
            }
            DeErrorKind::UnknownVariant { variant, expected } => write!(
                f,
                "unknown value `{variant}`, expected {}",
                one_of(expected)
            ),
            DeErrorKind::Custom(msg) => f.write_str(msg),
        }
    }
}

fn one_of(values: &[&str]) -> String {
    match values {
        [] => "nothing".into(),
        [one] => format!("`{one}`"),
        _ => format!(
            "one of {}",
            values
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl std::error::Error for DeError {}

/// Rewrites serde's Rust-flavoured "expected" texts for YAML authors.
fn expected_text(exp: &dyn de::Expected) -> String {
    let text = exp.to_string();
    match text.as_str() {
        "u16" => "an integer from 0 to 65535".into(),
        "u8" | "u32" | "u64" | "usize" => "a non-negative integer".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" | "a string" => text,
        _ if text.starts_with("struct ") => "a mapping".into(),
        _ if text.starts_with("a sequence") => "a list".into(),
        _ => text,
    }
}

fn unexpected_text(unexp: de::Unexpected<'_>) -> String {
    match unexp {
        de::Unexpected::Str(s) => format!("the string {s:?}"),
        de::Unexpected::Signed(i) => format!("the integer {i}"),
        de::Unexpected::Unsigned(u) => format!("the integer {u}"),
        de::Unexpected::Float(x) => format!("the number {x}"),
        de::Unexpected::Bool(b) => format!("the boolean {b}"),
        de::Unexpected::Unit => "null".into(),
        de::Unexpected::Seq => "a list".into(),
        de::Unexpected::Map => "a mapping".into(),
        other => other.to_string(),
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new(DeErrorKind::Custom(msg.to_string()))
    }
    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::new(DeErrorKind::InvalidType {
            found: unexpected_text(unexp),
            expected: expected_text(exp),
        })
    }
    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::new(DeErrorKind::InvalidValue {
            found: unexpected_text(unexp),
            expected: expected_text(exp),
        })
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self::new(DeErrorKind::UnknownField {
            field: field.to_string(),
            expected,
        })
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::new(DeErrorKind::UnknownVariant {
            variant: variant.to_string(),
            expected,
        })
    }
    fn missing_field(field: &'static str) -> Self {
        Self::new(DeErrorKind::MissingField(field))
    }
}

/// Deserializes `node` (which is at `path` in its document) into `T`.
pub fn from_node<T: DeserializeOwned>(node: &Node, path: FieldPath) -> Result<T, DeError> {
    let pos = node.pos;
    T::deserialize(NodeDe {
        node,
        path: path.clone(),
    })
    .map_err(|e| e.locate(&path, pos))
}

struct NodeDe<'a> {
    node: &'a Node,
    path: FieldPath,
}

impl NodeDe<'_> {
    fn type_error(&self, expected: &str) -> DeError {
        let found = match &self.node.value {
            Value::Str(s) => format!("the string {s:?}"),
            Value::Int(i) => format!("the integer {i}"),
            Value::Float(f) => format!("the number {f}"),
            Value::Bool(b) => format!("the boolean {b}"),
            other => other.type_name().to_string(),
        };
        DeError::new(DeErrorKind::InvalidType {
            found,
            expected: expected.to_string(),
        })
        .locate(&self.path, self.node.pos)
    }
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqDe {
                items,
                index: 0,
                path: &self.path,
            }),
            Value::Map(entries) => visitor.visit_map(MapDe {
                entries,
                index: 0,
                path: &self.path,
            }),
        };
        result.map_err(|e| e.locate(&self.path, self.node.pos))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let (path, pos) = (self.path.clone(), self.node.pos);
        match self.node.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
        .map_err(|e| e.locate(&path, pos))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.node.value {
            Value::Map(_) => self.deserialize_any(visitor),
            _ => Err(self.type_error("a mapping")),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.value {
            Value::Map(_) => self.deserialize_any(visitor),
            // an empty value (`env:`) is an empty mapping
            Value::Null => visitor.visit_map(MapDe {
                entries: &[],
                index: 0,
                path: &self.path,
            }),
            _ => Err(self.type_error("a mapping")),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.value {
            Value::Seq(_) => self.deserialize_any(visitor),
            Value::Null => visitor.visit_seq(SeqDe {
                items: &[],
                index: 0,
                path: &self.path,
            }),
            _ => Err(self.type_error("a list")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Str(_) => self.deserialize_any(visitor),
            _ => Err(self.type_error("a string")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Bool(_) => self.deserialize_any(visitor),
            _ => Err(self.type_error("a boolean (true or false)")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let (path, pos) = (self.path.clone(), self.node.pos);
        match &self.node.value {
            Value::Str(s) => visitor
                .visit_enum(UnitEnum {
                    variant: s.as_str(),
                })
                .map_err(|e| e.locate(&path, pos)),
            _ => Err(self.type_error("a string")),
        }
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        bytes byte_buf unit unit_struct tuple tuple_struct identifier ignored_any
    }
}

struct UnitEnum<'a> {
    variant: &'a str,
}

impl<'de> EnumAccess<'de> for UnitEnum<'_> {
    type Error = DeError;
    type Variant = UnitOnly;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, UnitOnly), DeError> {
        let de: StrDeserializer<'_, DeError> = self.variant.into_deserializer();
        Ok((seed.deserialize(de)?, UnitOnly))
    }
}

struct UnitOnly;

impl<'de> VariantAccess<'de> for UnitOnly {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, DeError> {
        Err(de::Error::custom("expected a mapping for this value"))
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, DeError> {
        Err(de::Error::custom("expected a mapping for this value"))
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, DeError> {
        Err(de::Error::custom("expected a mapping for this value"))
    }
}

struct SeqDe<'a, 'p> {
    items: &'a [Node],
    index: usize,
    path: &'p FieldPath,
}

impl<'de> SeqAccess<'de> for SeqDe<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.get(self.index) else {
            return Ok(None);
        };
        let path = self.path.index(self.index);
        self.index += 1;
        seed.deserialize(NodeDe {
            node: item,
            path: path.clone(),
        })
        .map(Some)
        .map_err(|e| e.locate(&path, item.pos))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.index)
    }
}

struct MapDe<'a, 'p> {
    entries: &'a [Entry],
    index: usize,
    path: &'p FieldPath,
}

impl<'de> MapAccess<'de> for MapDe<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.get(self.index) else {
            return Ok(None);
        };
        let de: StrDeserializer<'_, DeError> = entry.key.as_str().into_deserializer();
        seed.deserialize(de)
            .map(Some)
            .map_err(|e| e.locate(self.path, entry.key_pos))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some(entry) = self.entries.get(self.index) else {
            return Err(de::Error::custom(
                "a mapping value was requested past the end",
            ));
        };
        self.index += 1;
        let path = self.path.key(entry.key.as_str());
        seed.deserialize(NodeDe {
            node: &entry.value,
            path: path.clone(),
        })
        .map_err(|e| e.locate(&path, entry.value.pos))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len() - self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Outer {
        name: String,
        #[serde(default)]
        items: Vec<Inner>,
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Inner {
        count: u32,
        gpu_type: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Spark,
        Dask,
    }

    fn de(text: &str) -> Result<Outer, DeError> {
        let docs = parse_documents(text).expect("yaml");
        from_node(&docs[0], FieldPath::root())
    }

    #[test]
    fn deserializes() {
        let out =
            de("name: a\nitems:\n  - count: 2\n    gpuType: t4\nmode: dask\n").expect("valid");
        assert_eq!(out.items[0].count, 2);
        assert_eq!(out.mode, Some(Mode::Dask));
    }

    #[test]
    fn unknown_field_at_its_key_with_suggestion() {
        let err = de("name: a\nitems:\n  - count: 2\n    gpu_type: t4\n").expect_err("unknown");
        assert_eq!(err.path.to_string(), "items[0]");
        assert_eq!(err.pos, Pos { line: 4, column: 5 });
        assert_eq!(err.to_string(), "unknown field `gpu_type`");
        assert_eq!(err.hint().as_deref(), Some("did you mean `gpuType`?"));
    }

    #[test]
    fn wrong_type_at_the_value() {
        let err = de("name: a\nitems:\n  - count: many\n").expect_err("type");
        assert_eq!(err.path.to_string(), "items[0].count");
        assert_eq!(
            err.pos,
            Pos {
                line: 3,
                column: 12
            }
        );
        assert_eq!(
            err.to_string(),
            "expected a non-negative integer, found the string \"many\""
        );
        let err = de("name: [a]\n").expect_err("type");
        assert_eq!(err.to_string(), "expected a string, found a list");
        let err = de("name: 5\n").expect_err("type");
        assert_eq!(
            err.hint().as_deref(),
            Some("quote the value to make it a string")
        );
    }

    #[test]
    fn out_of_range() {
        let err = de("name: a\nitems: [{count: -1}]\n").expect_err("range");
        assert_eq!(err.path.to_string(), "items[0].count");
        assert_eq!(err.code(), "invalid-value");
    }

    #[test]
    fn missing_field_and_unknown_variant() {
        let err = de("items: []\n").expect_err("missing");
        assert_eq!(err.to_string(), "missing required field `name`");
        let err = de("name: a\nmode: sprak\n").expect_err("variant");
        assert_eq!(err.path.to_string(), "mode");
        assert_eq!(err.pos, Pos { line: 2, column: 7 });
        assert_eq!(err.hint().as_deref(), Some("did you mean `spark`?"));
    }
}
