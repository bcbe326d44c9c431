//! Kubernetes resource quantities (`500m`, `16Gi`, `1.5`, `2e3`), exactly as the API server
//! parses them.
//!
//! A [`Quantity`] keeps the text the user wrote (rendered manifests show it unchanged) and its
//! value in thousandths, rounded up as Kubernetes' `MilliValue()` does, so that comparisons
//! and sums (requests against limits, quotas) are exact integer arithmetic.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A resource quantity.
#[derive(Debug, Clone)]
pub struct Quantity {
    text: String,
    milli: i128,
}

/// Why a text is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a quantity: {reason}")]
pub struct QuantityError {
    /// The rejected text.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

const MAX_DIGITS: usize = 30;

impl Quantity {
    /// A quantity of whole units (`4` CPUs, `2` GPUs).
    pub fn from_units(units: i64) -> Self {
        Self {
            text: units.to_string(),
            milli: i128::from(units) * 1000,
        }
    }

    /// A quantity from thousandths of a unit, written in the shortest exact form
    /// (`500m`, `2`).
    pub fn from_milli(milli: i128) -> Self {
        let text = if milli % 1000 == 0 {
            (milli / 1000).to_string()
        } else {
            format!("{milli}m")
        };
        Self { text, milli }
    }

    /// A quantity of bytes written with the largest exact binary suffix (`16Gi`, `1536Mi`).
    pub fn from_bytes(bytes: i128) -> Self {
        let mut text = bytes.to_string();
        for (suffix, factor) in [
            ("Ei", 1i128 << 60),
            ("Pi", 1 << 50),
            ("Ti", 1 << 40),
            ("Gi", 1 << 30),
            ("Mi", 1 << 20),
            ("Ki", 1 << 10),
        ] {
            if bytes != 0 && bytes % factor == 0 {
                text = format!("{}{suffix}", bytes / factor);
                break;
            }
        }
        Self {
            text,
            milli: bytes * 1000,
        }
    }

    /// The value in thousandths of a unit, rounded up.
    pub fn milli(&self) -> i128 {
        self.milli
    }

    /// The value in whole units, rounded up (bytes for memory, cores for CPU).
    pub fn units_ceil(&self) -> i128 {
        self.milli.div_euclid(1000) + i128::from(self.milli.rem_euclid(1000) != 0)
    }

    /// Whether the value is a whole number of units (GPUs must be).
    pub fn is_whole(&self) -> bool {
        self.milli % 1000 == 0
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.milli < 0
    }

    /// The value as a float of units (for display and ratios only).
    pub fn as_f64(&self) -> f64 {
        self.milli as f64 / 1000.0
    }

    /// The text as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason| QuantityError {
            text: text.to_string(),
            reason,
        };
        let s = text.trim();
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        let (negative, s) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let number_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(number_end);
        if number.is_empty() || number == "." {
            return Err(err("it must start with a number"));
        }
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) => {
                if f.contains('.') {
                    return Err(err("it has more than one decimal point"));
                }
                (i, f)
            }
            None => (number, ""),
        };
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > MAX_DIGITS {
            return Err(err("it has too many digits"));
        }
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits
                .parse()
                .map_err(|_| err("it must start with a number"))?
        };
        let (binary_shift, exp10): (u32, i64) = match suffix {
            "" => (0, 0),
            "Ki" => (10, 0),
            "Mi" => (20, 0),
            "Gi" => (30, 0),
            "Ti" => (40, 0),
            "Pi" => (50, 0),
            "Ei" => (60, 0),
            "n" => (0, -9),
            "u" => (0, -6),
            "m" => (0, -3),
            "k" => (0, 3),
            "M" => (0, 6),
            "G" => (0, 9),
            "T" => (0, 12),
            "P" => (0, 15),
            "E" => (0, 18),
            _ if suffix.starts_with(['e', 'E']) => {
                let e = &suffix[1..];
                let e = e.strip_prefix('+').unwrap_or(e);
                let exp: i64 = e
                    .parse()
                    .map_err(|_| err("its exponent must be an integer, as in 1e3"))?;
                if exp.abs() > 40 {
                    return Err(err("its exponent is out of range"));
                }
                (0, exp)
            }
            _ => {
                return Err(err(
                    "unknown suffix; use one of n u m k M G T P E Ki Mi Gi Ti Pi Ei or an exponent",
                ));
            }
        };
        // value = mantissa * 2^shift * 10^(exp10 - frac_len); milli = value * 10^3, rounded up
        let frac_len = i64::try_from(frac_part.len()).map_err(|_| err("it has too many digits"))?;
        let exp = exp10 + 3 - frac_len;
        let scaled = mantissa
            .checked_mul(1i128 << binary_shift)
            .ok_or_else(|| err("it is too large"))?;
        let milli = if exp >= 0 {
            let factor = 10i128
                .checked_pow(u32::try_from(exp).map_err(|_| err("it is too large"))?)
                .ok_or_else(|| err("it is too large"))?;
            scaled
                .checked_mul(factor)
                .ok_or_else(|| err("it is too large"))?
        } else {
            match 10i128.checked_pow(u32::try_from(-exp).unwrap_or(u32::MAX)) {
                Some(div) => scaled / div + i128::from(scaled % div != 0),
                None => i128::from(scaled != 0),
            }
        };
        Ok(Self {
            text: text.trim().to_string(),
            milli: if negative { -milli } else { milli },
        })
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.milli == other.milli
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.milli.cmp(&other.milli)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = crate::scalar::ScalarText::deserialize(d)?.0;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Quantity {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Quantity".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A Kubernetes quantity: 500m, 2, 1.5, 16Gi, 1e3.",
            "anyOf": [
                {"type": "string", "pattern": r"^[+-]?(\d+\.?\d*|\.\d+)([numkMGTPE]|[KMGTPE]i|[eE][+-]?\d+)?$"},
                {"type": "number"}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(s: &str) -> Quantity {
        s.parse().expect("valid quantity")
    }

    #[test]
    fn values_match_kubernetes() {
        assert_eq!(q("500m").milli(), 500);
        assert_eq!(q("2").milli(), 2000);
        assert_eq!(q("1.5").milli(), 1500);
        assert_eq!(q("16Gi").units_ceil(), 16 * (1 << 30));
        assert_eq!(q("1k").units_ceil(), 1000);
        assert_eq!(q("1e3").units_ceil(), 1000);
        assert_eq!(q("1E3").units_ceil(), 1000);
        assert_eq!(q("100n").milli(), 1, "rounded up like MilliValue");
        assert_eq!(q(".5").milli(), 500);
        assert_eq!(q("5.").milli(), 5000);
        assert_eq!(q("-1").milli(), -1000);
        assert_eq!(q("0.1Gi").units_ceil(), 107_374_183);
        assert!(q("1Gi") > q("1G"));
        assert_eq!(q("1024Mi"), q("1Gi"));
        assert_eq!(q("16Gi").to_string(), "16Gi");
    }

    #[test]
    fn whole_units() {
        assert!(q("2").is_whole());
        assert!(!q("0.5").is_whole());
        assert!(!q("1500m").is_whole());
        assert!(q("2000m").is_whole());
    }

    #[test]
    fn rejects_what_kubernetes_rejects() {
        for bad in [
            "", "Gi", "1GB", "1gi", "1.2.3", "abc", "1e", "1ee3", "--1", "1 Gi", ".",
        ] {
            assert!(
                bad.parse::<Quantity>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn constructors_write_the_shortest_exact_form() {
        assert_eq!(Quantity::from_milli(500).to_string(), "500m");
        assert_eq!(Quantity::from_milli(3000).to_string(), "3");
        assert_eq!(Quantity::from_bytes(16 << 30).to_string(), "16Gi");
        assert_eq!(Quantity::from_bytes(1536 << 20).to_string(), "1536Mi");
        assert_eq!(Quantity::from_bytes(1000).to_string(), "1000");
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in "\\PC{0,24}") {
            let _ = s.parse::<Quantity>();
        }

        #[test]
        fn integers_and_binary_suffixes_are_exact(n in 0i64..1_000_000, shift in 0usize..4) {
            let suffix = ["", "Ki", "Mi", "Gi"][shift];
            let parsed = q(&format!("{n}{suffix}"));
            prop_assert_eq!(parsed.units_ceil(), i128::from(n) << (10 * shift));
        }

        #[test]
        fn milli_suffix_is_exact(n in 0i64..10_000_000) {
            prop_assert_eq!(q(&format!("{n}m")).milli(), i128::from(n));
        }
    }
}
