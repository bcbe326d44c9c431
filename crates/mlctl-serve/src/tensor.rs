//! Tensors as the server handles them: a datatype from the Open Inference Protocol's list,
//! a shape, and the elements in row-major order.
//!
//! Also the two wire forms of tensor data: JSON arrays (flat or nested, read straight into a
//! typed vector without building a JSON tree) and the little-endian bytes of the binary
//! tensor data extension that Triton and KServe clients send by default.

use std::fmt;

use half::f16;
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};

/// An element type, named as the Open Inference Protocol names it (`FP32`, `INT64`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// `BOOL`
    Bool,
    /// `UINT8`
    U8,
    /// `UINT16`
    U16,
    /// `UINT32`
    U32,
    /// `UINT64`
    U64,
    /// `INT8`
    I8,
    /// `INT16`
    I16,
    /// `INT32`
    I32,
    /// `INT64`
    I64,
    /// `FP16`
    F16,
    /// `FP32`
    F32,
    /// `FP64`
    F64,
}

impl DataType {
    /// Every datatype this server handles, in the order the protocol lists them.
    pub const ALL: [DataType; 12] = [
        DataType::Bool,
        DataType::U8,
        DataType::U16,
        DataType::U32,
        DataType::U64,
        DataType::I8,
        DataType::I16,
        DataType::I32,
        DataType::I64,
        DataType::F16,
        DataType::F32,
        DataType::F64,
    ];

    /// The protocol's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::U8 => "UINT8",
            DataType::U16 => "UINT16",
            DataType::U32 => "UINT32",
            DataType::U64 => "UINT64",
            DataType::I8 => "INT8",
            DataType::I16 => "INT16",
            DataType::I32 => "INT32",
            DataType::I64 => "INT64",
            DataType::F16 => "FP16",
            DataType::F32 => "FP32",
            DataType::F64 => "FP64",
        }
    }

    /// Reads a protocol name; `None` for anything else (including `BYTES`, which ONNX
    /// models served here never take).
    pub fn parse(name: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Bytes per element in the binary tensor data extension.
    pub fn size(self) -> usize {
        match self {
            DataType::Bool | DataType::U8 | DataType::I8 => 1,
            DataType::U16 | DataType::I16 | DataType::F16 => 2,
            DataType::U32 | DataType::I32 | DataType::F32 => 4,
            DataType::U64 | DataType::I64 | DataType::F64 => 8,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The elements of a tensor, in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// `BOOL`
    Bool(Vec<bool>),
    /// `UINT8`
    U8(Vec<u8>),
    /// `UINT16`
    U16(Vec<u16>),
    /// `UINT32`
    U32(Vec<u32>),
    /// `UINT64`
    U64(Vec<u64>),
    /// `INT8`
    I8(Vec<i8>),
    /// `INT16`
    I16(Vec<i16>),
    /// `INT32`
    I32(Vec<i32>),
    /// `INT64`
    I64(Vec<i64>),
    /// `FP16`
    F16(Vec<f16>),
    /// `FP32`
    F32(Vec<f32>),
    /// `FP64`
    F64(Vec<f64>),
}

/// Runs `$body` with `$v` bound to the vector inside `$data`, whatever its element type.
macro_rules! with_vec {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            TensorData::Bool($v) => $body,
            TensorData::U8($v) => $body,
            TensorData::U16($v) => $body,
            TensorData::U32($v) => $body,
            TensorData::U64($v) => $body,
            TensorData::I8($v) => $body,
            TensorData::I16($v) => $body,
            TensorData::I32($v) => $body,
            TensorData::I64($v) => $body,
            TensorData::F16($v) => $body,
            TensorData::F32($v) => $body,
            TensorData::F64($v) => $body,
        }
    };
}

/// Runs `$body` with `$t` as the Rust element type of `$datatype` and `$wrap` as the
/// `TensorData` constructor for it.
macro_rules! with_type {
    ($datatype:expr, $t:ident, $wrap:ident => $body:expr) => {
        match $datatype {
            DataType::Bool => {
                type $t = bool;
                let $wrap = TensorData::Bool;
                $body
            }
            DataType::U8 => {
                type $t = u8;
                let $wrap = TensorData::U8;
                $body
            }
            DataType::U16 => {
                type $t = u16;
                let $wrap = TensorData::U16;
                $body
            }
            DataType::U32 => {
                type $t = u32;
                let $wrap = TensorData::U32;
                $body
            }
            DataType::U64 => {
                type $t = u64;
                let $wrap = TensorData::U64;
                $body
            }
            DataType::I8 => {
                type $t = i8;
                let $wrap = TensorData::I8;
                $body
            }
            DataType::I16 => {
                type $t = i16;
                let $wrap = TensorData::I16;
                $body
            }
            DataType::I32 => {
                type $t = i32;
                let $wrap = TensorData::I32;
                $body
            }
            DataType::I64 => {
                type $t = i64;
                let $wrap = TensorData::I64;
                $body
            }
            DataType::F16 => {
                type $t = f16;
                let $wrap = TensorData::F16;
                $body
            }
            DataType::F32 => {
                type $t = f32;
                let $wrap = TensorData::F32;
                $body
            }
            DataType::F64 => {
                type $t = f64;
                let $wrap = TensorData::F64;
                $body
            }
        }
    };
}

pub(crate) use with_vec;

impl TensorData {
    /// The element type.
    pub fn datatype(&self) -> DataType {
        match self {
            TensorData::Bool(_) => DataType::Bool,
            TensorData::U8(_) => DataType::U8,
            TensorData::U16(_) => DataType::U16,
            TensorData::U32(_) => DataType::U32,
            TensorData::U64(_) => DataType::U64,
            TensorData::I8(_) => DataType::I8,
            TensorData::I16(_) => DataType::I16,
            TensorData::I32(_) => DataType::I32,
            TensorData::I64(_) => DataType::I64,
            TensorData::F16(_) => DataType::F16,
            TensorData::F32(_) => DataType::F32,
            TensorData::F64(_) => DataType::F64,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        with_vec!(self, v => v.len())
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty vector of `datatype` with room for `capacity` elements.
    pub fn with_capacity(datatype: DataType, capacity: usize) -> TensorData {
        with_type!(datatype, T, wrap => wrap(Vec::<T>::with_capacity(capacity)))
    }

    /// Appends the elements of `other`, which must have the same datatype.
    pub(crate) fn extend_from(&mut self, other: &TensorData) -> Result<(), TypeMismatch> {
        macro_rules! extend {
            ($($variant:ident),*) => {
                match (&mut *self, other) {
                    $((TensorData::$variant(a), TensorData::$variant(b)) => a.extend_from_slice(b),)*
                    (a, b) => {
                        return Err(TypeMismatch {
                            expected: a.datatype(),
                            found: b.datatype(),
                        })
                    }
                }
            };
        }
        extend!(Bool, U8, U16, U32, U64, I8, I16, I32, I64, F16, F32, F64);
        Ok(())
    }

    /// A copy of the elements in `range`.
    pub(crate) fn slice(&self, range: std::ops::Range<usize>) -> TensorData {
        macro_rules! slice {
            ($($variant:ident),*) => {
                match self {
                    $(TensorData::$variant(v) => TensorData::$variant(v[range].to_vec()),)*
                }
            };
        }
        slice!(Bool, U8, U16, U32, U64, I8, I16, I32, I64, F16, F32, F64)
    }

    /// Reads little-endian elements of `datatype` (the binary tensor data extension).
    pub fn from_le_bytes(datatype: DataType, bytes: &[u8]) -> Result<TensorData, String> {
        let size = datatype.size();
        if !bytes.len().is_multiple_of(size) {
            return Err(format!(
                "{} bytes of binary data is not a whole number of {datatype} elements ({size} bytes each)",
                bytes.len()
            ));
        }
        let chunks = bytes.chunks_exact(size);
        macro_rules! read {
            ($wrap:ident, $t:ty) => {
                TensorData::$wrap(
                    chunks
                        .map(|c| {
                            let mut a = [0u8; std::mem::size_of::<$t>()];
                            a.copy_from_slice(c);
                            <$t>::from_le_bytes(a)
                        })
                        .collect(),
                )
            };
        }
        Ok(match datatype {
            DataType::Bool => {
                let mut out = Vec::with_capacity(bytes.len());
                for &b in bytes {
                    match b {
                        0 => out.push(false),
                        1 => out.push(true),
                        other => {
                            return Err(format!(
                                "byte {other} is not a BOOL; binary BOOL elements are 0 or 1"
                            ));
                        }
                    }
                }
                TensorData::Bool(out)
            }
            DataType::U8 => TensorData::U8(bytes.to_vec()),
            DataType::U16 => read!(U16, u16),
            DataType::U32 => read!(U32, u32),
            DataType::U64 => read!(U64, u64),
            DataType::I8 => read!(I8, i8),
            DataType::I16 => read!(I16, i16),
            DataType::I32 => read!(I32, i32),
            DataType::I64 => read!(I64, i64),
            DataType::F16 => read!(F16, f16),
            DataType::F32 => read!(F32, f32),
            DataType::F64 => read!(F64, f64),
        })
    }

    /// Appends the elements as little-endian bytes (the binary tensor data extension).
    pub fn write_le_bytes(&self, out: &mut Vec<u8>) {
        out.reserve(self.len() * self.datatype().size());
        match self {
            TensorData::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
            TensorData::U8(v) => out.extend_from_slice(v),
            TensorData::U16(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::U32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::U64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::I8(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::I16(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::I32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::I64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::F16(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::F32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::F64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
    }

    /// Reads a JSON array of `datatype` elements, flat or nested (nesting is read in
    /// row-major order, as the protocol allows); `size_hint` is the number of elements the
    /// shape promises, used only to size the vector.
    pub fn from_json(
        datatype: DataType,
        json: &str,
        size_hint: usize,
    ) -> Result<TensorData, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(json);
        let data = with_type!(datatype, T, wrap => {
            // A hostile shape must not make us allocate: cap the hint by what the text can hold.
            let mut out = Vec::<T>::with_capacity(size_hint.min(json.len() / 2 + 1));
            Flatten { out: &mut out, depth: 0 }.deserialize(&mut de)?;
            wrap(out)
        });
        de.end()?;
        Ok(data)
    }

    /// Like [`TensorData::from_json`], from an already parsed JSON value.
    pub fn from_json_value(
        datatype: DataType,
        json: &serde_json::Value,
        size_hint: usize,
    ) -> Result<TensorData, serde_json::Error> {
        Ok(with_type!(datatype, T, wrap => {
            let mut out = Vec::<T>::with_capacity(size_hint);
            Flatten { out: &mut out, depth: 0 }.deserialize(json)?;
            wrap(out)
        }))
    }
}

/// Two tensors that were to be joined have different element types.
#[derive(Debug, thiserror::Error)]
#[error("cannot join {found} elements to {expected} elements")]
pub struct TypeMismatch {
    expected: DataType,
    found: DataType,
}

impl Serialize for TensorData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        with_vec!(self, v => serializer.collect_seq(v.iter().map(AsJson)))
    }
}

/// One element written as a JSON scalar (FP16 as the float it is).
pub(crate) trait Scalar {
    fn serialize_scalar<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
}

macro_rules! scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            fn serialize_scalar<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.serialize(s)
            }
        }
    )*};
}

scalar!(bool, u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

impl Scalar for f16 {
    fn serialize_scalar<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f32(self.to_f32())
    }
}

/// Serializes one element through [`Scalar`].
pub(crate) struct AsJson<'a, T>(pub(crate) &'a T);

impl<T: Scalar> Serialize for AsJson<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_scalar(s)
    }
}

/// A tensor: a shape and its elements.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions; their product is the number of elements.
    pub shape: Vec<usize>,
    /// Elements in row-major order.
    pub data: TensorData,
}

impl Tensor {
    /// The element type.
    pub fn datatype(&self) -> DataType {
        self.data.datatype()
    }
}

/// The product of `shape`, or `None` if it overflows.
pub fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// One element type that JSON numbers (or booleans) convert into.
trait Element: Sized {
    const NAME: DataType;
    fn from_u64(v: u64) -> Option<Self>;
    fn from_i64(v: i64) -> Option<Self>;
    fn from_f64(v: f64) -> Option<Self>;
    fn from_bool(_: bool) -> Option<Self> {
        None
    }
}

macro_rules! int_element {
    ($t:ty, $name:expr) => {
        impl Element for $t {
            const NAME: DataType = $name;
            fn from_u64(v: u64) -> Option<Self> {
                <$t>::try_from(v).ok()
            }
            fn from_i64(v: i64) -> Option<Self> {
                <$t>::try_from(v).ok()
            }
            fn from_f64(v: f64) -> Option<Self> {
                // 3.0 is an integer written by a client that only has floats; 3.5 is not.
                if v.fract() == 0.0 && v >= <$t>::MIN as f64 && v <= <$t>::MAX as f64 {
                    Some(v as $t)
                } else {
                    None
                }
            }
        }
    };
}

int_element!(u8, DataType::U8);
int_element!(u16, DataType::U16);
int_element!(u32, DataType::U32);
int_element!(u64, DataType::U64);
int_element!(i8, DataType::I8);
int_element!(i16, DataType::I16);
int_element!(i32, DataType::I32);
int_element!(i64, DataType::I64);

macro_rules! float_element {
    ($t:ty, $name:expr, $from_f64:expr) => {
        impl Element for $t {
            const NAME: DataType = $name;
            fn from_u64(v: u64) -> Option<Self> {
                Some($from_f64(v as f64))
            }
            fn from_i64(v: i64) -> Option<Self> {
                Some($from_f64(v as f64))
            }
            fn from_f64(v: f64) -> Option<Self> {
                Some($from_f64(v))
            }
        }
    };
}

float_element!(f16, DataType::F16, f16::from_f64);
float_element!(f32, DataType::F32, |v: f64| v as f32);
float_element!(f64, DataType::F64, |v: f64| v);

impl Element for bool {
    const NAME: DataType = DataType::Bool;
    fn from_u64(_: u64) -> Option<Self> {
        None
    }
    fn from_i64(_: i64) -> Option<Self> {
        None
    }
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
    fn from_bool(v: bool) -> Option<Self> {
        Some(v)
    }
}

/// Appends the elements of a (possibly nested) JSON array to `out`.
struct Flatten<'a, T> {
    out: &'a mut Vec<T>,
    depth: usize,
}

/// Deeper nesting than any real tensor has: refuse it rather than recurse without bound.
const MAX_DEPTH: usize = 32;

impl<'de, T: Element> DeserializeSeed<'de> for Flatten<'_, T> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, T: Element> Visitor<'de> for Flatten<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of {} values", T::NAME)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(de::Error::custom(format_args!(
                "data is nested deeper than {MAX_DEPTH} levels"
            )));
        }
        let depth = self.depth + 1;
        while seq
            .next_element_seed(Flatten {
                out: &mut *self.out,
                depth,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.push(T::from_bool(v), &v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.push(T::from_u64(v), &v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.push(T::from_i64(v), &v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.push(T::from_f64(v), &v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        Err(E::custom(format_args!(
            "found the string {v:?} where a {} value was expected",
            T::NAME
        )))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(format_args!(
            "found null where a {} value was expected",
            T::NAME
        )))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(format_args!(
            "found an object where a {} value was expected",
            T::NAME
        )))
    }
}

impl<T: Element> Flatten<'_, T> {
    fn push<E: de::Error>(self, v: Option<T>, shown: &dyn fmt::Display) -> Result<(), E> {
        if self.depth == 0 {
            return Err(E::custom("data must be an array"));
        }
        match v {
            Some(v) => {
                self.out.push(v);
                Ok(())
            }
            None => Err(E::custom(format_args!(
                "{shown} is not a valid {} value",
                T::NAME
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datatype_names_round_trip() {
        for t in DataType::ALL {
            assert_eq!(DataType::parse(t.as_str()), Some(t));
        }
        assert_eq!(DataType::parse("fp32"), None);
        assert_eq!(DataType::parse("BYTES"), None);
    }

    #[test]
    fn json_data_flat_and_nested_read_the_same() {
        let flat = TensorData::from_json(DataType::F32, "[1, 2.5, -3, 4]", 4).expect("flat");
        let nested =
            TensorData::from_json(DataType::F32, "[[1, 2.5], [-3, 4]]", 4).expect("nested");
        assert_eq!(flat, TensorData::F32(vec![1.0, 2.5, -3.0, 4.0]));
        assert_eq!(flat, nested);
    }

    #[test]
    fn json_integers_are_range_checked() {
        let ok = TensorData::from_json(DataType::I8, "[-128, 127, 3.0]", 3).expect("in range");
        assert_eq!(ok, TensorData::I8(vec![-128, 127, 3]));
        let err = TensorData::from_json(DataType::I8, "[128]", 1).expect_err("out of range");
        assert!(
            err.to_string().contains("128 is not a valid INT8 value"),
            "{err}"
        );
        let err = TensorData::from_json(DataType::U32, "[-1]", 1).expect_err("negative");
        assert!(
            err.to_string().contains("-1 is not a valid UINT32 value"),
            "{err}"
        );
        let err = TensorData::from_json(DataType::I64, "[1.5]", 1).expect_err("fraction");
        assert!(
            err.to_string().contains("1.5 is not a valid INT64 value"),
            "{err}"
        );
    }

    #[test]
    fn json_rejects_wrong_kinds() {
        let err = TensorData::from_json(DataType::F32, r#"[1, "2"]"#, 2).expect_err("string");
        assert!(err.to_string().contains(r#"the string "2""#), "{err}");
        let err = TensorData::from_json(DataType::Bool, "[1]", 1).expect_err("number as bool");
        assert!(
            err.to_string().contains("1 is not a valid BOOL value"),
            "{err}"
        );
        let err = TensorData::from_json(DataType::F32, "3", 1).expect_err("scalar");
        assert!(err.to_string().contains("data must be an array"), "{err}");
        let err = TensorData::from_json(DataType::F32, "[null]", 1).expect_err("null");
        assert!(err.to_string().contains("found null"), "{err}");
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let err = TensorData::from_json(DataType::F32, &deep, 1).expect_err("deep");
        assert!(err.to_string().contains("nested deeper"), "{err}");
    }

    #[test]
    fn binary_round_trips_every_type() {
        let samples = [
            TensorData::Bool(vec![true, false]),
            TensorData::U8(vec![0, 255]),
            TensorData::U16(vec![1, 65535]),
            TensorData::U32(vec![7, u32::MAX]),
            TensorData::U64(vec![9, u64::MAX]),
            TensorData::I8(vec![-1, 5]),
            TensorData::I16(vec![-300, 300]),
            TensorData::I32(vec![i32::MIN, 3]),
            TensorData::I64(vec![i64::MIN, i64::MAX]),
            TensorData::F16(vec![f16::from_f32(1.5), f16::from_f32(-2.0)]),
            TensorData::F32(vec![1.25, -0.5]),
            TensorData::F64(vec![1e300, -1e-300]),
        ];
        for data in samples {
            let mut bytes = Vec::new();
            data.write_le_bytes(&mut bytes);
            assert_eq!(bytes.len(), data.len() * data.datatype().size());
            let back = TensorData::from_le_bytes(data.datatype(), &bytes).expect("round trip");
            assert_eq!(back, data);
        }
        let err = TensorData::from_le_bytes(DataType::F32, &[0; 6]).expect_err("ragged");
        assert!(err.contains("not a whole number of FP32 elements"), "{err}");
        let err = TensorData::from_le_bytes(DataType::Bool, &[2]).expect_err("bad bool");
        assert!(err.contains("byte 2 is not a BOOL"), "{err}");
    }

    #[test]
    fn extend_and_slice() {
        let mut a = TensorData::F32(vec![1.0, 2.0]);
        a.extend_from(&TensorData::F32(vec![3.0]))
            .expect("same type");
        assert_eq!(a.slice(1..3), TensorData::F32(vec![2.0, 3.0]));
        assert!(a.extend_from(&TensorData::I64(vec![1])).is_err());
    }

    #[test]
    fn serializes_as_json_numbers() {
        let json = serde_json::to_string(&TensorData::F16(vec![f16::from_f32(0.5)])).expect("json");
        assert_eq!(json, "[0.5]");
        let json = serde_json::to_string(&TensorData::Bool(vec![true])).expect("json");
        assert_eq!(json, "[true]");
    }
}
