//! Scalar value types of the spec that accept what a YAML author naturally writes:
//! text that may be written as a number ([`ScalarText`]), durations (`10s`, `1h30m`) and
//! percentages (`70%`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration as StdDuration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::yaml::format_float;

/// A scalar taken as text: `0.85`, `"0.85"` and `true` all become strings. Parameter values
/// and environment variables are text, however the YAML author quoted them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ScalarText(pub String);

impl fmt::Display for ScalarText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ScalarText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ScalarText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_str<E>(self, v: &str) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<ScalarText, E> {
                Ok(ScalarText(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<ScalarText, E> {
                Ok(ScalarText(format_float(v)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for ScalarText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ScalarText".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": ["string", "number", "boolean"]})
    }
}

/// A duration written as Go and Kubernetes write them (`30s`, `1m30s`, `2h`, `500ms`), or a
/// bare number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub StdDuration);

impl Duration {
    /// The duration in whole seconds, rounded up.
    pub fn as_secs_ceil(&self) -> u64 {
        self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)
    }
}

impl FromStr for Duration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a duration; write it as 30s, 5m, 1h30m or 500ms");
        let s = text.trim();
        if s.is_empty() {
            return Err(bad());
        }
        if let Ok(secs) = s.parse::<u64>() {
            return Ok(Self(StdDuration::from_secs(secs)));
        }
        let mut total = StdDuration::ZERO;
        let mut rest = s;
        while !rest.is_empty() {
            let num_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(bad)?;
            let (num, tail) = rest.split_at(num_end);
            let value: f64 = num.parse().map_err(|_| bad())?;
            let unit_end = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_end);
            let nanos_per_unit: f64 = match unit {
                "ns" => 1.0,
                "us" | "µs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                _ => return Err(bad()),
            };
            let nanos = value * nanos_per_unit;
            if !nanos.is_finite() || nanos > 1e20 {
                return Err(bad());
            }
            total += StdDuration::from_nanos(nanos.round() as u64);
            rest = tail;
        }
        Ok(Self(total))
    }
}

impl fmt::Display for Duration {
    /// Formats as Go does for whole seconds (`1h30m0s` is written `1h30m`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0;
        if total.subsec_nanos() != 0 {
            return write!(f, "{}ms", total.as_millis());
        }
        let secs = total.as_secs();
        if secs == 0 {
            return f.write_str("0s");
        }
        let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = ScalarText::deserialize(d)?;
        text.0.parse().map_err(de::Error::custom)
    }
}

impl schemars::JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: 30s, 5m, 1h30m, 500ms, or a number of seconds.",
            "anyOf": [{"type": "string", "pattern": r"^(\d+|(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+)$"}, {"type": "integer", "minimum": 0}]
        })
    }
}

/// A percentage: `70%` or a bare number of percent (`70`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(pub f64);

impl FromStr for Percent {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let s = text.trim();
        let number = s.strip_suffix('%').unwrap_or(s).trim();
        match number.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(Self(v)),
            _ => Err(format!(
                "{text:?} is not a percentage; write it as 70% or 0.5%"
            )),
        }
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", format_float(self.0))
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = ScalarText::deserialize(d)?;
        text.0.parse().map_err(de::Error::custom)
    }
}

impl schemars::JsonSchema for Percent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Percent".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A percentage: 70% or 0.5%.",
            "anyOf": [{"type": "string", "pattern": r"^\d+(\.\d+)?%?$"}, {"type": "number", "minimum": 0}]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |s: &str| s.parse::<Duration>().expect("valid").0;
        assert_eq!(d("30s"), StdDuration::from_secs(30));
        assert_eq!(d("1h30m"), StdDuration::from_secs(5400));
        assert_eq!(d("500ms"), StdDuration::from_millis(500));
        assert_eq!(d("1.5s"), StdDuration::from_millis(1500));
        assert_eq!(d("10"), StdDuration::from_secs(10));
        for bad in ["", "s", "10x", "1h-3m", "abc", "1 h"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad:?}");
        }
        assert_eq!(
            "5400s".parse::<Duration>().expect("valid").to_string(),
            "1h30m"
        );
        assert_eq!("0".parse::<Duration>().expect("valid").to_string(), "0s");
    }

    #[test]
    fn percents() {
        assert_eq!("70%".parse::<Percent>(), Ok(Percent(70.0)));
        assert_eq!("0.5%".parse::<Percent>(), Ok(Percent(0.5)));
        assert_eq!("70".parse::<Percent>(), Ok(Percent(70.0)));
        assert!("-1%".parse::<Percent>().is_err());
        assert!("x%".parse::<Percent>().is_err());
    }
}
