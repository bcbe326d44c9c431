//! Go regular expressions (RE2 syntax, as `regexp.Compile` reads them) on the `regex` crate.
//!
//! Both engines implement RE2's syntax; the differences that matter for `=~` are rewritten
//! before compiling:
//!
//! - `\d \D \s \S \w \W` and `\b \B` are ASCII-only in Go (`\s` is `[\t\n\f\r ]`) and
//!   Unicode-aware in `regex`: they are replaced with their ASCII meaning;
//! - `\Q...\E` (literal text) exists only in Go: the text is escaped;
//! - octal escapes (`\0`, `\12`, `\141`) exist only in Go: they become `\x{..}`;
//! - a `{` that does not start a valid repetition is a literal in Go and an error in
//!   `regex`; Go rejects repetition counts above 1000;
//! - inside a class, `[` is literal in Go (unless it starts `[:alpha:]`) and starts a nested
//!   class in `regex`; `&&` and `~~` are set operations in `regex`: they are escaped.
//!
//! What is left: a few patterns that Go rejects and `regex` accepts (`(?x)`, `\<`, class
//! set operations written with `--`) and error messages, which are `regex`'s.

use std::fmt::Write as _;

/// Compiles `pattern` with Go's meaning; the error is a message for the user.
pub(super) fn compile(pattern: &str) -> Result<regex::Regex, String> {
    let translated = translate(pattern)?;
    regex::Regex::new(&translated).map_err(|e| match e {
        regex::Error::Syntax(text) => text
            .lines()
            .rev()
            .find(|l| l.starts_with("error:"))
            .map_or(text.clone(), |l| {
                l.trim_start_matches("error:").trim().to_string()
            }),
        other => other.to_string(),
    })
}

const ASCII_DIGIT: &str = "0-9";
const ASCII_SPACE: &str = r"\t\n\x0C\r ";
const ASCII_WORD: &str = "0-9A-Za-z_";

fn translate(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    // Inside `[...]`: the index of the first character of the class body (where `]` is
    // still a literal).
    let mut class_body: Option<usize> = None;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&n) = chars.get(i + 1) else {
                return Err("trailing backslash at end of expression".to_string());
            };
            i += 2;
            let in_class = class_body.is_some();
            match n {
                'd' | 's' | 'w' | 'D' | 'S' | 'W' => {
                    let set = match n.to_ascii_lowercase() {
                        'd' => ASCII_DIGIT,
                        's' => ASCII_SPACE,
                        _ => ASCII_WORD,
                    };
                    let negated = n.is_ascii_uppercase();
                    match (in_class, negated) {
                        (true, false) => out.push_str(set),
                        _ => {
                            let _ = write!(out, "[{}{set}]", if negated { "^" } else { "" });
                        }
                    }
                }
                'b' | 'B' if !in_class => {
                    let _ = write!(out, r"(?-u:\{n})");
                }
                'Q' if !in_class => {
                    let rest: String = chars[i..].iter().collect();
                    let (literal, after) = match rest.find(r"\E") {
                        Some(end) => (&rest[..end], end + 2),
                        None => (rest.as_str(), rest.len()),
                    };
                    out.push_str(&regex::escape(literal));
                    i += rest[..after].chars().count();
                }
                '0'..='7' => {
                    // Go: a lone `\1`..`\7` is a backreference (unsupported); `\0` and
                    // `\NN`/`\NNN` are octal.
                    let mut value = n.to_digit(8).unwrap_or(0);
                    let mut digits = 1;
                    while digits < 3 {
                        match chars.get(i).and_then(|d| d.to_digit(8)) {
                            Some(d) => {
                                value = value * 8 + d;
                                i += 1;
                                digits += 1;
                            }
                            None => break,
                        }
                    }
                    if n != '0' && digits == 1 {
                        return Err(format!("invalid escape sequence: `\\{n}`"));
                    }
                    let _ = write!(out, "\\x{{{value:X}}}");
                }
                _ => {
                    out.push('\\');
                    out.push(n);
                }
            }
            continue;
        }
        match class_body {
            Some(body) => match c {
                ']' if i != body => {
                    class_body = None;
                    out.push(']');
                }
                '[' if chars.get(i + 1) == Some(&':') => {
                    // A POSIX class such as `[:alpha:]`, the same in both engines.
                    let rest: String = chars[i..].iter().collect();
                    match rest.find(":]") {
                        Some(end) => {
                            out.push_str(&rest[..end + 2]);
                            i += rest[..end + 2].chars().count();
                            continue;
                        }
                        None => out.push_str(r"\["),
                    }
                }
                '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                _ => out.push(c),
            },
            None => match c {
                '[' => {
                    out.push('[');
                    if chars.get(i + 1) == Some(&'^') {
                        out.push('^');
                        i += 1;
                    }
                    class_body = Some(i + 1);
                }
                '{' => match repetition(&chars[i..]) {
                    Some((len, min, max)) => {
                        if min > 1000 || max.is_some_and(|m| m > 1000 || m < min) {
                            return Err(format!(
                                "invalid repeat count: `{}`",
                                chars[i..i + len].iter().collect::<String>()
                            ));
                        }
                        out.extend(&chars[i..i + len]);
                        i += len;
                        continue;
                    }
                    None => out.push_str(r"\{"),
                },
                _ => out.push(c),
            },
        }
        i += 1;
    }
    Ok(out)
}

/// A repetition `{n}`, `{n,}` or `{n,m}` at the start of `chars`: its length and bounds.
fn repetition(chars: &[char]) -> Option<(usize, u64, Option<u64>)> {
    let mut i = 1;
    let number = |i: &mut usize| -> Option<u64> {
        let start = *i;
        while chars.get(*i).is_some_and(char::is_ascii_digit) {
            *i += 1;
        }
        if *i == start {
            return None;
        }
        // Saturate: anything this long is rejected as above 1000 anyway.
        Some(chars[start..*i].iter().fold(0u64, |acc, d| {
            acc.saturating_mul(10)
                .saturating_add(u64::from(*d as u8 - b'0'))
        }))
    };
    let min = number(&mut i)?;
    let max = if chars.get(i) == Some(&',') {
        i += 1;
        if chars.get(i) == Some(&'}') {
            None
        } else {
            Some(number(&mut i)?)
        }
    } else {
        Some(min)
    };
    (chars.get(i) == Some(&'}')).then_some((i + 1, min, max))
}

#[cfg(test)]
mod tests {
    use super::compile;

    /// Expected matches follow Go's `regexp` documentation (`regexp/syntax` doc.go: Perl
    /// classes and `\b` are ASCII; `\Q...\E` literal text; octal escapes; `{` literal when
    /// not a repetition; repeat counts at most 1000).
    #[test]
    fn go_semantics() {
        let cases: &[(&str, &str, bool)] = &[
            (r"^\d+$", "123", true),
            (r"^\d+$", "١٢٣", false), // Arabic-Indic digits are not \d in Go
            (r"^\w+$", "héllo", false),
            (r"^[\w]+$", "abc_1", true),
            (r"^[^\W]+$", "abc", true),
            (r"^\s$", "\u{0B}", false), // Go's \s has no vertical tab
            (r"^\s$", "\u{A0}", false),
            (r"\bfoo\b", "a foo b", true),
            (r"\bfoo\b", "éfooé", true), // é is not an ASCII word character
            (r"^\Qa.b\E$", "a.b", true),
            (r"^\Qa.b\E$", "axb", false),
            (r"^\141$", "a", true),
            (r"^a{2}$", "aa", true),
            (r"^a{$", "a{", true),
            (r"^a{,2}$", "a{,2}", true),
            (r"^[[]$", "[", true),
            (r"^[a&&b]$", "&", true),
            (r"^[[:alpha:]]+$", "abc", true),
            (r"^[]a]+$", "]a", true),
            ("hea", "heads", true),
            ("^tails$", "heads", false),
        ];
        for (pattern, text, want) in cases {
            let re = compile(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            assert_eq!(re.is_match(text), *want, "{pattern:?} on {text:?}");
        }
        for bad in [r"a{1001}", r"\1", "a\\", "(", "[a"] {
            assert!(compile(bad).is_err(), "{bad:?} should not compile");
        }
    }
}
