//! What a scalar means: as a value (YAML 1.1 as Kubernetes reads it: `yes`, `on` and `n` are
//! booleans, `~`, `null` and nothing are null, `0x1F`, `0o17` and `1_000` are integers, `1.5e3`
//! is a float), as a mapping key (its text), under an explicit tag (`!!int`, `!!str`,
//! `!!binary`...), and as the identity of a key when duplicates are looked for.
//!
//! These are the rules serde-saphyr 2.2 applies with its default options; mlctl parsed its YAML
//! through serde-saphyr before this module existed, and the tests of `yaml` compare both on every
//! YAML file of the repository and on random input.

use std::borrow::Cow;

use serde_saphyr::granit_parser::{ScalarStyle, Tag};

use super::Value;

/// The namespace of the YAML core tags (`!!int` is `tag:yaml.org,2002:int`).
const YAML_NAMESPACE: &str = "tag:yaml.org,2002:";

/// What an explicit tag means to the loader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum TagKind {
    /// No tag.
    None,
    Int,
    Float,
    Bool,
    Null,
    Seq,
    Map,
    /// `!!timestamp`: not readable as text or number.
    Timestamp,
    /// `!time`, `!degrees`, `!radians`: robotics units, not supported.
    Time,
    Degrees,
    Radians,
    /// `!!binary`: base64 text decoded to UTF-8.
    Binary,
    /// `!!str`: the text as written.
    Str,
    /// `!!merge` (YAML 1.1 merge key).
    Merge,
    /// `!!value` (YAML 1.1), read as an untagged scalar.
    Value,
    /// `!`: the text as written.
    NonSpecific,
    /// `!include`: read as an untagged scalar (includes are not resolved).
    Include,
    /// Any other tag: ignored, the node is read as if untagged.
    Other,
}

/// The kind of node a tag applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NodeKind {
    Scalar,
    Sequence,
    Mapping,
}

impl TagKind {
    fn of(tag: &Tag) -> TagKind {
        for prefix in [
            "!include",
            "tag:yaml.org,2002:include",
            "tag:yaml.org,2002:!include",
        ] {
            if let Some(rest) = tag.suffix_in_namespace(prefix)
                && (rest.is_empty() || rest.starts_with('#'))
            {
                return TagKind::Include;
            }
        }
        if let Some(kind) = tag.core_suffix().and_then(core_kind) {
            return kind;
        }
        if let Some(name) = tag.suffix_in_namespace(YAML_NAMESPACE) {
            return match name.as_ref() {
                "merge" => TagKind::Merge,
                "value" => TagKind::Value,
                name => named_kind(name.strip_prefix('!').unwrap_or(name)),
            };
        }
        let Some(name) = tag.suffix_in_namespace("!") else {
            return TagKind::Other;
        };
        match name.as_ref() {
            "" | "!" => TagKind::NonSpecific,
            "!timestamp" => TagKind::Timestamp,
            "!binary" => TagKind::Binary,
            name => match name.strip_prefix('!') {
                Some(name) => core_kind(name).unwrap_or(TagKind::Other),
                None => named_kind(name),
            },
        }
    }

    /// The kind of node the tag must be on, if it has one.
    pub(super) fn requires(self) -> Option<NodeKind> {
        match self {
            TagKind::Int
            | TagKind::Float
            | TagKind::Bool
            | TagKind::Null
            | TagKind::Timestamp
            | TagKind::Time
            | TagKind::Degrees
            | TagKind::Radians
            | TagKind::Binary
            | TagKind::Str
            | TagKind::Merge
            | TagKind::Value
            | TagKind::Include => Some(NodeKind::Scalar),
            TagKind::Seq => Some(NodeKind::Sequence),
            TagKind::Map => Some(NodeKind::Mapping),
            TagKind::None | TagKind::NonSpecific | TagKind::Other => None,
        }
    }

    /// Tags that keep the text as written (no null, boolean or number).
    fn forces_string(self) -> bool {
        matches!(self, TagKind::Str | TagKind::NonSpecific)
    }

    fn is_robotics(self) -> bool {
        matches!(self, TagKind::Time | TagKind::Degrees | TagKind::Radians)
    }

    /// Whether a scalar with this tag can be read as text.
    pub(super) fn can_be_text(self) -> bool {
        matches!(
            self,
            TagKind::None
                | TagKind::Str
                | TagKind::Merge
                | TagKind::Value
                | TagKind::Other
                | TagKind::Include
                | TagKind::NonSpecific
        )
    }

    fn is_core(self) -> bool {
        matches!(
            self,
            TagKind::Int
                | TagKind::Float
                | TagKind::Bool
                | TagKind::Null
                | TagKind::Seq
                | TagKind::Map
                | TagKind::Str
        )
    }
}

fn core_kind(name: &str) -> Option<TagKind> {
    Some(match name {
        "null" => TagKind::Null,
        "bool" => TagKind::Bool,
        "int" => TagKind::Int,
        "float" => TagKind::Float,
        "map" => TagKind::Map,
        "seq" => TagKind::Seq,
        "str" => TagKind::Str,
        _ => return None,
    })
}

fn named_kind(name: &str) -> TagKind {
    match name {
        "int" => TagKind::Int,
        "float" => TagKind::Float,
        "bool" => TagKind::Bool,
        "null" => TagKind::Null,
        "seq" => TagKind::Seq,
        "map" => TagKind::Map,
        "str" => TagKind::Str,
        "timestamp" => TagKind::Timestamp,
        "time" => TagKind::Time,
        "binary" => TagKind::Binary,
        "include" => TagKind::Include,
        "degrees" => TagKind::Degrees,
        "radians" => TagKind::Radians,
        _ => TagKind::Other,
    }
}

/// An explicit tag: its meaning and its spellings.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct TagInfo {
    pub(super) kind: TagKind,
    /// The resolved tag (`tag:yaml.org,2002:int`, `!foo`): a custom tag's identity.
    pub(super) resolved: String,
    /// The tag as written (`!!int`), for messages.
    pub(super) written: String,
}

impl TagInfo {
    pub(super) fn new(tag: &Tag) -> TagInfo {
        TagInfo {
            kind: TagKind::of(tag),
            resolved: tag.to_string(),
            written: tag.original(),
        }
    }
}

/// Why a scalar could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ScalarError {
    /// Not a valid value of the tagged type (`!!int abc`).
    Invalid(&'static str),
    /// `.inf`, `.nan` or a number too large for a double, as written.
    NonFinite(String),
    /// A tag whose values are not text, where text is needed (`!!timestamp`, an `!!int` key).
    TaggedNotText,
    /// `!!binary` that is not base64.
    Base64,
    /// `!!binary` that is not UTF-8 once decoded.
    BinaryNotUtf8,
    /// A null mapping key.
    NullKey,
}

impl ScalarError {
    /// The message reported to the user.
    pub(super) fn message(&self) -> String {
        match self {
            ScalarError::Invalid(ty) => format!("invalid {ty}"),
            ScalarError::NonFinite(text) => format!(
                "non-finite float `{text}` is not allowed: JSON and Kubernetes have no infinity or NaN"
            ),
            ScalarError::TaggedNotText => "cannot deserialize tagged scalar into string".into(),
            ScalarError::Base64 => "invalid !!binary base64".into(),
            ScalarError::BinaryNotUtf8 => "!!binary scalar is not valid UTF-8 text".into(),
            ScalarError::NullKey => {
                "a mapping key cannot be null; quote it if it is meant as text".into()
            }
        }
    }
}

/// Trims the padding that scalar conversion accepts (spaces, tabs, line breaks).
fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\r', '\n'])
}

/// Whether the text of a plain scalar spells null.
fn is_nullish(text: &str, style: ScalarStyle) -> bool {
    style == ScalarStyle::Plain && matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// Whether a scalar is null: tagged `!!null`, or untagged (or custom-tagged) and spelled null.
pub(super) fn is_null(tag: TagKind, text: &str, style: ScalarStyle) -> bool {
    tag == TagKind::Null
        || (!tag.is_core()
            && !tag.forces_string()
            && !matches!(tag, TagKind::Binary | TagKind::Timestamp)
            && !tag.is_robotics()
            && is_nullish(text, style))
}

/// Whether a key scalar is the merge key `<<`.
pub(super) fn is_merge_key(text: &str, style: ScalarStyle, tag: TagKind) -> bool {
    text == "<<" && (tag == TagKind::Merge || (tag == TagKind::None && style == ScalarStyle::Plain))
}

/// A YAML 1.1 boolean (`y`, `yes`, `on`, `true` and their opposites, in any case).
fn yaml11_bool(s: &str) -> Option<bool> {
    let t = trim(s);
    let is = |words: [&str; 4]| words.iter().any(|w| t.eq_ignore_ascii_case(w));
    if is(["true", "yes", "y", "on"]) {
        Some(true)
    } else if is(["false", "no", "n", "off"]) {
        Some(false)
    } else {
        None
    }
}

/// Digits in `radix`, with `_` allowed between two digits.
fn digits(s: &str, radix: u32) -> Option<u128> {
    let bytes = s.as_bytes();
    let mut value: u128 = 0;
    let mut any = false;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            let inside =
                i > 0 && bytes[i - 1] != b'_' && bytes.get(i + 1).is_some_and(|&n| n != b'_');
            if !inside {
                return None;
            }
            continue;
        }
        let d = char::from(b).to_digit(radix)?;
        value = value
            .checked_mul(u128::from(radix))?
            .checked_add(u128::from(d))?;
        any = true;
    }
    any.then_some(value)
}

/// The magnitude of an integer without its sign: `0x`, `0o` and `0b` prefixes, decimal without
/// a redundant leading zero.
fn magnitude(rest: &str) -> Option<u128> {
    let prefixed = |lower: &str, upper: &str| {
        rest.strip_prefix(lower)
            .or_else(|| rest.strip_prefix(upper))
    };
    if let Some(d) = prefixed("0x", "0X") {
        digits(d, 16)
    } else if let Some(d) = prefixed("0o", "0O") {
        digits(d, 8)
    } else if let Some(d) = prefixed("0b", "0B") {
        digits(d, 2)
    } else if rest.starts_with('0') && rest != "0" {
        None
    } else {
        digits(rest, 10)
    }
}

/// An integer with an optional sign.
fn parse_signed(s: &str) -> Option<i128> {
    let t = trim(s);
    let (negative, rest) = match t.strip_prefix('+') {
        Some(r) => (false, r),
        None => match t.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, t),
        },
    };
    let m = magnitude(rest)?;
    if negative {
        if m == i128::MIN.unsigned_abs() {
            Some(i128::MIN)
        } else {
            i128::try_from(m).ok().map(|v| -v)
        }
    } else {
        i128::try_from(m).ok()
    }
}

/// A non-negative integer with an optional `+`.
fn parse_unsigned(s: &str) -> Option<u128> {
    let t = trim(s);
    if t.starts_with('-') {
        return None;
    }
    magnitude(t.strip_prefix('+').unwrap_or(t))
}

fn is_signed_nan(t: &str) -> bool {
    t.strip_prefix(['+', '-'])
        .is_some_and(|u| matches!(u, ".nan" | ".NaN" | ".NAN"))
}

/// A float as YAML 1.2 writes it (`.inf`, `-.Inf`, `.nan` included); finite otherwise.
fn parse_float(s: &str, tag: TagKind) -> Option<f64> {
    let t = trim(s);
    if tag == TagKind::Float && is_signed_nan(t) {
        return Some(f64::NAN);
    }
    let (negative, unsigned) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    match unsigned {
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        ".inf" | ".Inf" | ".INF" if negative => Some(f64::NEG_INFINITY),
        ".inf" | ".Inf" | ".INF" => Some(f64::INFINITY),
        _ => t.parse::<f64>().ok().filter(|v| v.is_finite()),
    }
}

/// [`parse_float`], or a numeral too large for a double (`1e999`), which is infinite.
fn parse_float_or_overflow(s: &str, tag: TagKind) -> Option<f64> {
    if let Some(v) = parse_float(s, tag) {
        return Some(v);
    }
    let t = trim(s);
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if !unsigned.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| v.is_infinite())
}

fn float_value(v: f64, text: &str) -> Result<Value, ScalarError> {
    if v.is_finite() {
        Ok(Value::Float(v))
    } else {
        Err(ScalarError::NonFinite(text.to_owned()))
    }
}

fn unsigned_value(u: u128) -> Result<Value, ScalarError> {
    let u = u64::try_from(u).map_err(|_| ScalarError::Invalid("u64"))?;
    Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
}

/// `!!binary` text: base64 (whitespace allowed), decoded, as UTF-8 text.
fn binary_text(text: &str) -> Result<String, ScalarError> {
    let bytes = decode_base64(text).ok_or(ScalarError::Base64)?;
    String::from_utf8(bytes).map_err(|_| ScalarError::BinaryNotUtf8)
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn sextet(b: u8) -> Option<u32> {
        Some(u32::from(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    let clean: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !clean.len().is_multiple_of(4) {
        return None;
    }
    let quads = clean.len() / 4;
    let mut out = Vec::with_capacity(quads * 3);
    for (i, q) in clean.chunks_exact(4).enumerate() {
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != quads) {
            return None;
        }
        let a = sextet(q[0])?;
        let b = sextet(q[1])?;
        let c = if q[2] == b'=' {
            if pad < 2 {
                return None;
            }
            0
        } else {
            sextet(q[2])?
        };
        let d = if q[3] == b'=' { 0 } else { sextet(q[3])? };
        if (pad == 2 && b & 0x0F != 0) || (pad == 1 && c & 0x03 != 0) {
            return None;
        }
        let n = (a << 18) | (b << 12) | (c << 6) | d;
        let [_, x, y, z] = n.to_be_bytes();
        out.push(x);
        if pad < 2 {
            out.push(y);
        }
        if pad == 0 {
            out.push(z);
        }
    }
    Some(out)
}

/// The value of a scalar in a value position (not a mapping key).
pub(super) fn value(
    text: Cow<'_, str>,
    style: ScalarStyle,
    tag: TagKind,
) -> Result<Value, ScalarError> {
    match tag {
        TagKind::Null => return Ok(Value::Null),
        TagKind::Bool => {
            return yaml11_bool(&text)
                .map(Value::Bool)
                .ok_or(ScalarError::Invalid("boolean"));
        }
        TagKind::Int if trim(&text).starts_with('-') => {
            return parse_signed(&text)
                .and_then(|v| i64::try_from(v).ok())
                .map(Value::Int)
                .ok_or(ScalarError::Invalid("i64"));
        }
        TagKind::Int => {
            return parse_unsigned(&text)
                .ok_or(ScalarError::Invalid("u64"))
                .and_then(unsigned_value);
        }
        TagKind::Float => {
            return parse_float_or_overflow(&text, tag)
                .ok_or(ScalarError::Invalid("floating point"))
                .and_then(|v| float_value(v, &text));
        }
        TagKind::Time | TagKind::Degrees | TagKind::Radians => {
            return Err(ScalarError::Invalid("floating point"));
        }
        _ => {}
    }
    if is_null(tag, &text, style) {
        return Ok(Value::Null);
    }
    if style != ScalarStyle::Plain || !tag.can_be_text() || tag.forces_string() {
        return match tag {
            TagKind::Binary => binary_text(&text).map(Value::Str),
            t if !t.can_be_text() => Err(ScalarError::TaggedNotText),
            _ => Ok(Value::Str(text.into_owned())),
        };
    }
    // A plain scalar: boolean, integer, float, or else text. Most are text, and their first
    // character says so: booleans start with one of `yYnNtTfFoO`, numbers with a digit, a
    // sign or a dot (Rust's float syntax also admits `inf` and `nan`, but only as non-finite
    // values, which are not taken), and spaces would be trimmed.
    if let Some(&first) = text.as_bytes().first()
        && !matches!(
            first,
            b'0'..=b'9'
                | b'+'
                | b'-'
                | b'.'
                | b'y'
                | b'Y'
                | b'n'
                | b'N'
                | b't'
                | b'T'
                | b'f'
                | b'F'
                | b'o'
                | b'O'
                | b' '
                | b'\t'
                | b'\r'
                | b'\n'
        )
    {
        return Ok(Value::Str(text.into_owned()));
    }
    if let Some(b) = yaml11_bool(&text) {
        return Ok(Value::Bool(b));
    }
    let t = trim(&text);
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if matches!(unsigned.as_bytes(), [b'0', b'X' | b'O' | b'B', ..]) || is_signed_nan(t) {
        return Ok(Value::Str(text.into_owned()));
    }
    if t.starts_with('-') {
        let redundant_zero = unsigned.len() > 1
            && unsigned.starts_with('0')
            && unsigned.bytes().all(|b| b.is_ascii_digit());
        if !redundant_zero && let Some(v) = parse_signed(t).and_then(|v| i64::try_from(v).ok()) {
            return Ok(Value::Int(v));
        }
    } else if let Some(u) = parse_unsigned(t).filter(|&u| u <= u128::from(u64::MAX)) {
        return unsigned_value(u);
    }
    if let Some(v) = parse_float_or_overflow(&text, tag) {
        return float_value(v, &text);
    }
    Ok(Value::Str(text.into_owned()))
}

/// The text of a scalar used as a mapping key.
pub(super) fn key(
    text: Cow<'_, str>,
    style: ScalarStyle,
    tag: TagKind,
) -> Result<String, ScalarError> {
    if (tag == TagKind::Null || is_nullish(&text, style)) && !tag.forces_string() {
        return Err(ScalarError::NullKey);
    }
    match tag {
        TagKind::Binary => binary_text(&text),
        t if !t.can_be_text() => Err(ScalarError::TaggedNotText),
        _ => Ok(text.into_owned()),
    }
}

/// The identity of a tag in a key's [`Fingerprint`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum CanonicalTag {
    Kind(TagKind),
    Custom(String),
}

/// The identity of a mapping key for duplicate detection: `16` and `0x10` are the same key,
/// `16` and `"16"` are not, nor are `!a x` and `!b x`; `x` and `"x"` are.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Fingerprint {
    Int {
        negative: bool,
        magnitude: u128,
    },
    Scalar(CanonicalTag, String),
    Seq(CanonicalTag, Vec<Fingerprint>),
    /// Entries sorted: a mapping's identity does not depend on the order of its keys.
    Map(CanonicalTag, Vec<(Fingerprint, Fingerprint)>),
    /// An alias to a node that is not complete yet, by anchor.
    Recursive(usize),
}

/// The tag that identifies a key node of kind `implicit` (`TagKind::Str`, `Seq` or `Map`)
/// carrying `tag` (of kind `kind`): a custom tag (and the local `!map`) as resolved, the
/// implicit kind for no tag or `!`, any text-like tag on a scalar as `!!str`.
pub(super) fn canonical_tag(
    tag: Option<&TagInfo>,
    kind: TagKind,
    implicit: TagKind,
) -> CanonicalTag {
    if let Some(t) = tag
        && (kind == TagKind::Other
            || (implicit == TagKind::Map && kind == TagKind::Map && t.resolved == "!map"))
    {
        return CanonicalTag::Custom(t.resolved.clone());
    }
    CanonicalTag::Kind(if matches!(kind, TagKind::None | TagKind::NonSpecific) {
        implicit
    } else if implicit == TagKind::Str && kind.can_be_text() {
        TagKind::Str
    } else {
        kind
    })
}

/// The integer identity of a key that is an integer (untagged plain, or `!!int`).
pub(super) fn int_fingerprint(
    text: &str,
    style: ScalarStyle,
    tag: TagKind,
) -> Option<(bool, u128)> {
    if tag != TagKind::Int && !(tag == TagKind::None && style == ScalarStyle::Plain) {
        return None;
    }
    let t = trim(text);
    if t.starts_with('-') {
        parse_signed(t).map(|v| (v < 0, v.unsigned_abs()))
    } else {
        parse_unsigned(t).map(|v| (false, v))
    }
}

/// The fingerprint of a scalar key.
pub(super) fn scalar_fingerprint(
    text: &str,
    style: ScalarStyle,
    tag: Option<&TagInfo>,
) -> Fingerprint {
    let kind = tag.map_or(TagKind::None, |t| t.kind);
    if let Some((negative, magnitude)) = int_fingerprint(text, style, kind) {
        return Fingerprint::Int {
            negative,
            magnitude,
        };
    }
    let kind = if kind == TagKind::None && is_null(kind, text, style) {
        TagKind::Null
    } else {
        kind
    };
    Fingerprint::Scalar(canonical_tag(tag, kind, TagKind::Str), text.to_owned())
}
