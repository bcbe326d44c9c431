//! Go's `time.ParseInLocation`, for the fourteen layouts govaluate tries on every quoted
//! string literal (`tryParseTime` in govaluate's `parsing.go`).
//!
//! govaluate turns a quoted literal that parses as a time into a number: the Unix time in
//! seconds. `'2024-01-01' < '2024-02-01'` therefore compares numbers, and `'2024-01-01' > 5`
//! is not a type error. This module reproduces exactly which strings Go accepts for those
//! layouts (digit counts, ranges, case-insensitive month and weekday names, a layout space
//! matching one or more spaces, fractional seconds accepted after `05`, ...) and the instant
//! Go computes. The location is `time.Local`, which is UTC in the Argo controller's container
//! (no `TZ`, no `/etc/localtime`); a zone abbreviation such as `MST` therefore never shifts the
//! instant, and a numeric offset such as `-07:00` does.

/// One element of a layout: literal text or one of Go's "std" chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Lit(&'static str),
    /// `2006`
    LongYear,
    /// `01`
    ZeroMonth,
    /// `Jan`
    Month,
    /// `02`
    ZeroDay,
    /// `_2`
    UnderDay,
    /// `Mon`
    WeekDay,
    /// `15`
    Hour,
    /// `3`
    Hour12,
    /// `04`
    ZeroMinute,
    /// `05`
    ZeroSecond,
    /// `.999999999`
    FracSecond9,
    /// `PM`
    Pm,
    /// `MST`
    Tz,
    /// `Z0700`
    Iso8601Tz,
    /// `Z07:00`
    Iso8601ColonTz,
    /// `-0700`
    NumTz,
    /// `-07:00`
    NumColonTz,
}

use Chunk::*;

/// govaluate's list, in its order: Go's `time.ANSIC`, `UnixDate`, `RubyDate`, `Kitchen`,
/// `RFC3339`, `RFC3339Nano`, then its own ISO 8601 forms. The first layout that parses wins.
const LAYOUTS: [&str; 14] = [
    "Mon Jan _2 15:04:05 2006",
    "Mon Jan _2 15:04:05 MST 2006",
    "Mon Jan 02 15:04:05 -0700 2006",
    "3:04PM",
    "2006-01-02T15:04:05Z07:00",
    "2006-01-02T15:04:05.999999999Z07:00",
    "2006-01-02",
    "2006-01-02 15:04",
    "2006-01-02 15:04:05",
    "2006-01-02 15:04:05-07:00",
    "2006-01-02T15Z0700",
    "2006-01-02T15:04Z0700",
    "2006-01-02T15:04:05Z0700",
    "2006-01-02T15:04:05.999999999Z0700",
];

/// The std chunks these layouts use, by their spelling (Go's `nextStdChunk`, restricted).
const CHUNKS: [(&str, Chunk); 17] = [
    ("2006", LongYear),
    ("01", ZeroMonth),
    ("02", ZeroDay),
    ("04", ZeroMinute),
    ("05", ZeroSecond),
    ("_2", UnderDay),
    ("15", Hour),
    ("3", Hour12),
    ("Jan", Month),
    ("Mon", WeekDay),
    ("MST", Tz),
    ("PM", Pm),
    (".999999999", FracSecond9),
    ("Z07:00", Iso8601ColonTz),
    ("Z0700", Iso8601Tz),
    ("-07:00", NumColonTz),
    ("-0700", NumTz),
];

/// A layout as literal text and chunks.
fn chunks(layout: &'static str) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut literal_start = 0;
    let mut i = 0;
    while i < layout.len() {
        match CHUNKS
            .iter()
            .find(|(spelling, _)| layout[i..].starts_with(spelling))
        {
            Some((spelling, chunk)) => {
                if literal_start < i {
                    out.push(Lit(&layout[literal_start..i]));
                }
                out.push(*chunk);
                i += spelling.len();
                literal_start = i;
            }
            None => i += 1,
        }
    }
    if literal_start < layout.len() {
        out.push(Lit(&layout[literal_start..]));
    }
    out
}

const SHORT_DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const SHORT_MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The Unix time in seconds of `text` if one of govaluate's layouts parses it.
pub(super) fn parse_unix_seconds(text: &str) -> Option<i64> {
    LAYOUTS
        .iter()
        .find_map(|layout| parse_layout(&chunks(layout), text.as_bytes()))
}

/// Where the zone information of a parse came from.
enum Zone {
    /// No zone in the layout: `time.Local` (UTC).
    Local,
    /// A numeric offset east of UTC, in seconds.
    Offset(i64),
}

fn parse_layout(layout: &[Chunk], mut value: &[u8]) -> Option<i64> {
    let mut year: i64 = 0;
    let mut month: i64 = -1;
    let mut day: i64 = -1;
    let (mut hour, mut min, mut sec) = (0i64, 0i64, 0i64);
    let (mut pm, mut am) = (false, false);
    let mut zone = Zone::Local;
    for (i, chunk) in layout.iter().enumerate() {
        match *chunk {
            Lit(text) => value = skip(value, text.as_bytes())?,
            LongYear => {
                if value.len() < 4 || !is_digit(value, 0) {
                    return None;
                }
                year = all_digits(&value[..4])?;
                value = &value[4..];
            }
            ZeroMonth => {
                let (m, rest) = getnum(value, true)?;
                if !(1..=12).contains(&m) {
                    return None;
                }
                month = m;
                value = rest;
            }
            Month => {
                let (index, rest) = lookup(&SHORT_MONTHS, value)?;
                month = index as i64 + 1;
                value = rest;
            }
            ZeroDay | UnderDay => {
                if *chunk == UnderDay && value.first() == Some(&b' ') {
                    value = &value[1..];
                }
                let (d, rest) = getnum(value, *chunk == ZeroDay)?;
                day = d;
                value = rest;
            }
            WeekDay => value = lookup(&SHORT_DAYS, value)?.1,
            Hour => {
                let (h, rest) = getnum(value, false)?;
                if !(0..24).contains(&h) {
                    return None;
                }
                hour = h;
                value = rest;
            }
            Hour12 => {
                let (h, rest) = getnum(value, false)?;
                if !(0..=12).contains(&h) {
                    return None;
                }
                hour = h;
                value = rest;
            }
            ZeroMinute => {
                let (m, rest) = getnum(value, true)?;
                if !(0..60).contains(&m) {
                    return None;
                }
                min = m;
                value = rest;
            }
            ZeroSecond => {
                let (s, rest) = getnum(value, true)?;
                if !(0..60).contains(&s) {
                    return None;
                }
                sec = s;
                value = rest;
                // Go accepts a fractional second after `05` even when the layout has none.
                let fraction_follows =
                    value.len() >= 2 && is_comma_or_period(value[0]) && is_digit(value, 1);
                if fraction_follows && layout.get(i + 1) != Some(&FracSecond9) {
                    let n = 2 + value[2..].iter().take_while(|b| b.is_ascii_digit()).count();
                    value = &value[n..];
                }
            }
            FracSecond9 => {
                // Optional in the value; only digits after the separator.
                if value.len() >= 2 && is_comma_or_period(value[0]) && is_digit(value, 1) {
                    let n = 1 + value[1..].iter().take_while(|b| b.is_ascii_digit()).count();
                    value = &value[n..];
                }
            }
            Pm => {
                if value.len() < 2 {
                    return None;
                }
                match &value[..2] {
                    b"PM" => pm = true,
                    b"AM" => am = true,
                    _ => return None,
                }
                value = &value[2..];
            }
            Tz => {
                if value.len() >= 3 && &value[..3] == b"UTC" {
                    value = &value[3..];
                } else {
                    // Any other abbreviation makes a fabricated zone that keeps the wall
                    // clock as UTC: the instant is not shifted.
                    let n = time_zone_len(value)?;
                    value = &value[n..];
                }
            }
            Iso8601Tz | Iso8601ColonTz | NumTz | NumColonTz => {
                if matches!(chunk, Iso8601Tz | Iso8601ColonTz) && value.first() == Some(&b'Z') {
                    value = &value[1..];
                    zone = Zone::Offset(0);
                    continue;
                }
                let colon = matches!(chunk, Iso8601ColonTz | NumColonTz);
                let (sign, hh, mm, rest) = if colon {
                    if value.len() < 6 || value[3] != b':' {
                        return None;
                    }
                    (value[0], &value[1..3], &value[4..6], &value[6..])
                } else {
                    if value.len() < 5 {
                        return None;
                    }
                    (value[0], &value[1..3], &value[3..5], &value[5..])
                };
                let (hr, _) = getnum(hh, true)?;
                let (mn, _) = getnum(mm, true)?;
                if hr > 24 || mn > 60 {
                    return None;
                }
                let offset = (hr * 60 + mn) * 60;
                zone = Zone::Offset(match sign {
                    b'+' => offset,
                    b'-' => -offset,
                    _ => return None,
                });
                value = rest;
            }
        }
    }
    if !value.is_empty() {
        return None;
    }
    if pm && hour < 12 {
        hour += 12;
    } else if am && hour == 12 {
        hour = 0;
    }
    if month < 0 {
        month = 1;
    }
    if day < 0 {
        day = 1;
    }
    if day < 1 || day > days_in(month, year) {
        return None;
    }
    let wall = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec;
    Some(match zone {
        Zone::Local => wall,
        Zone::Offset(offset) => wall - offset,
    })
}

/// Go's `skip`: a space in the layout matches one or more spaces (or the end of the value).
fn skip<'a>(mut value: &'a [u8], mut prefix: &[u8]) -> Option<&'a [u8]> {
    while let Some(&p) = prefix.first() {
        if p == b' ' {
            if value.first().is_some_and(|&v| v != b' ') {
                return None;
            }
            prefix = trim_spaces(prefix);
            value = trim_spaces(value);
            continue;
        }
        if value.first() != Some(&p) {
            return None;
        }
        prefix = &prefix[1..];
        value = &value[1..];
    }
    Some(value)
}

fn trim_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ').count();
    &s[n..]
}

fn is_digit(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_digit)
}

fn is_comma_or_period(b: u8) -> bool {
    b == b'.' || b == b','
}

fn all_digits(s: &[u8]) -> Option<i64> {
    s.iter().try_fold(0i64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

/// Go's `getnum`: one or two digits (exactly two when `fixed`).
fn getnum(s: &[u8], fixed: bool) -> Option<(i64, &[u8])> {
    if !is_digit(s, 0) {
        return None;
    }
    let first = i64::from(s[0] - b'0');
    if !is_digit(s, 1) {
        return (!fixed).then(|| (first, &s[1..]));
    }
    Some((first * 10 + i64::from(s[1] - b'0'), &s[2..]))
}

/// Go's `lookup`: a name from `table`, ASCII case-insensitively.
fn lookup<'a>(table: &[&str], value: &'a [u8]) -> Option<(usize, &'a [u8])> {
    table.iter().enumerate().find_map(|(i, name)| {
        let name = name.as_bytes();
        (value.len() >= name.len() && value[..name.len()].eq_ignore_ascii_case(name))
            .then(|| (i, &value[name.len()..]))
    })
}

/// Go's `parseTimeZone`: the length of a zone abbreviation at the start of `value`.
fn time_zone_len(value: &[u8]) -> Option<usize> {
    if value.len() < 3 {
        return None;
    }
    if value.len() >= 4 && (&value[..4] == b"ChST" || &value[..4] == b"MeST") {
        return Some(4);
    }
    if &value[..3] == b"GMT" {
        return Some(3 + signed_offset_len(&value[3..]));
    }
    if value[0] == b'+' || value[0] == b'-' {
        let n = signed_offset_len(value);
        return (n > 0).then_some(n);
    }
    let upper = value
        .iter()
        .take(6)
        .take_while(|b| b.is_ascii_uppercase())
        .count();
    match upper {
        3 => Some(3),
        4 if value[3] == b'T' || &value[..4] == b"WITA" => Some(4),
        5 if value[4] == b'T' => Some(5),
        _ => None,
    }
}

/// Go's `parseSignedOffset`: `+h`/`-hh` with an hour of at most 23, or 0.
fn signed_offset_len(value: &[u8]) -> usize {
    let Some(&sign) = value.first() else {
        return 0;
    };
    if sign != b'+' && sign != b'-' {
        return 0;
    }
    let digits = value[1..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return 0;
    }
    // Go's leadingInt fails on overflow; anything that long is above 23 anyway.
    let hours = value[1..1 + digits].iter().try_fold(0u64, |acc, &b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    });
    match hours {
        Some(h) if h <= 23 => 1 + digits,
        _ => 0,
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in(month: i64, year: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::Chunk::*;
    use super::{chunks, parse_unix_seconds};

    #[test]
    fn layouts_split_as_go_splits_them() {
        assert_eq!(
            chunks("2006-01-02 15:04:05-07:00"),
            [
                LongYear,
                Lit("-"),
                ZeroMonth,
                Lit("-"),
                ZeroDay,
                Lit(" "),
                Hour,
                Lit(":"),
                ZeroMinute,
                Lit(":"),
                ZeroSecond,
                NumColonTz
            ]
        );
        assert_eq!(chunks("3:04PM"), [Hour12, Lit(":"), ZeroMinute, Pm]);
        assert_eq!(
            chunks("Mon Jan _2 15:04:05 MST 2006")[..5],
            [WeekDay, Lit(" "), Month, Lit(" "), UnderDay]
        );
    }

    /// Expected values are what Go's `time.ParseInLocation(layout, s, time.UTC).Unix()`
    /// returns; each case names the layout and the Go rule it exercises
    /// (`time/format.go`, `parse` and helpers).
    #[test]
    fn govaluate_layouts() {
        let cases: &[(&str, Option<i64>)] = &[
            // "2006-01-02"
            ("2024-01-01", Some(1_704_067_200)),
            ("1970-01-01", Some(0)),
            ("2024-02-29", Some(1_709_164_800)),
            ("2023-02-29", None), // day out of range for the month
            ("2024-13-01", None), // month out of range
            ("2024-1-01", None),  // `01` needs two digits
            ("24-01-01", None),   // `2006` needs four digits
            ("0000-01-01", Some(-62_167_219_200)),
            // "2006-01-02 15:04" (the hour `15` takes one or two digits)
            ("2024-01-01 10:30", Some(1_704_105_000)),
            ("2024-01-01 5:30", Some(1_704_087_000)),
            ("2024-01-01   10:30", Some(1_704_105_000)), // a layout space matches several
            ("2024-01-01 24:00", None),
            // "2006-01-02 15:04:05", with a fractional second Go accepts after `05`
            ("2024-01-01 10:30:15", Some(1_704_105_015)),
            ("2024-01-01 10:30:15.250", Some(1_704_105_015)),
            ("2024-01-01 10:30:60", None),
            // "2006-01-02 15:04:05-07:00"
            ("2024-01-01 10:30:15+02:00", Some(1_704_097_815)),
            ("2024-01-01 10:30:15-07:00", Some(1_704_130_215)),
            // RFC 3339 and RFC 3339 with nanoseconds
            ("2024-01-01T10:30:15Z", Some(1_704_105_015)),
            ("2024-01-01T10:30:15.123456789Z", Some(1_704_105_015)),
            ("2024-01-01T10:30:15+01:00", Some(1_704_101_415)),
            ("2024-01-01T10:30:15z", None),
            // ISO 8601 layouts with `Z0700`
            ("2024-01-01T10Z", Some(1_704_103_200)),
            ("2024-01-01T10:30+0100", Some(1_704_101_400)),
            ("2024-01-01T10:30:15-0130", Some(1_704_110_415)),
            // time.Kitchen: year 0, January 1
            ("3:04PM", Some(-62_167_219_200 + 15 * 3600 + 4 * 60)),
            ("12:00AM", Some(-62_167_219_200)),
            ("3:04pm", None), // `PM` is matched case-sensitively
            // time.ANSIC and time.UnixDate: names are case-insensitive, `_2` takes a space
            ("Mon Jan  2 15:04:05 2006", Some(1_136_214_245)),
            ("mon JAN 2 15:04:05 2006", Some(1_136_214_245)),
            ("Mon Jan  2 15:04:05 MST 2006", Some(1_136_214_245)),
            ("Mon Jan  2 15:04:05 UTC 2006", Some(1_136_214_245)),
            ("Mon Jan  2 15:04:05 GMT+7 2006", Some(1_136_214_245)),
            ("Mon Jan  2 15:04:05 Mst 2006", None),
            ("Xyz Jan  2 15:04:05 2006", None),
            // time.RubyDate
            ("Mon Jan 02 15:04:05 -0700 2006", Some(1_136_239_445)),
            // not times
            ("heads", None),
            ("0.9", None),
            ("", None),
            ("2024-01-01 ", None),
            ("2024-01-01x", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_unix_seconds(text), *want, "{text:?}");
        }
    }
}
