//! `when` expressions, evaluated exactly as Argo Workflows evaluates them.
//!
//! Argo first substitutes the `{{...}}` templates of a `when` and then hands the resulting
//! text to [govaluate](https://github.com/Knetic/govaluate) (`shouldExecute` in
//! `workflow/controller/steps.go`), after turning every govaluate *variable* (a bare word)
//! into a string so that `{{steps.flip.outputs.result}} == heads` works unquoted. This module
//! implements that language on the substituted text: [`parse`] then [`Expr::eval`]. Nothing
//! here substitutes templates; the caller does.
//!
//! # The language
//!
//! - **Literals**: numbers (`0.85`, `.5`, `0x1F`; always floating point), strings in single or
//!   double quotes (a backslash escapes any character; either quote ends a string), `true`
//!   and `false`, and bare words (`heads`, `Succeeded`), which are strings. A word starts with
//!   a letter and continues with letters, digits, `_` and `.`; `[any text]` is a word too.
//! - **A quoted string that is a date or time** (`'2024-01-01'`, `"2024-01-01T10:00:00Z"`,
//!   the fourteen layouts govaluate tries) is a number: its Unix time in seconds.
//! - **Operators**, loosest first: `,` (makes a list), `? :` and `??`, `||`, `&&`, the
//!   comparators `== != < > <= >= =~ !~ in`, `& | ^`, `<< >>`, `+ -`, `* / %`, `**`, and the
//!   prefixes `- ! ~`. Operators of one level associate to the left. Parentheses group.
//!
//! # Typing (govaluate's, including its surprises)
//!
//! - `==` and `!=` compare anything: values of different types are simply unequal, so
//!   `"0.9" == 0.9` is false and `heads == heads` is true.
//! - `< > <= >=` need two numbers or two strings (strings compare byte-wise):
//!   `0.9 > 0.85` is true, `"0.9" > 0.85` and `abc > 1` are errors.
//! - `&&`, `||`, `!` and the condition of `?` need booleans; `&&` and `||` short-circuit, so
//!   `false && "x"` is false but `"x" && false` is an error.
//! - `+` adds numbers and concatenates when either side is a string (`a + 1` is `"a1"`, a
//!   number printed as Go's `%v` prints it); `- * / % **` and the bitwise operators need
//!   numbers. So an unquoted `text-classifier` is `text` minus `classifier`: an error. Quote
//!   values that may contain operators.
//! - `=~` and `!~` match a string against a Go (RE2) regular expression, unanchored;
//!   `in` tests membership in a parenthesised list: `x in (a, b)`.
//! - A word containing a dot (`model.onnx`, `v1.2`) is a govaluate accessor, not a string:
//!   an error (Argo passes no parameters to access).
//! - The result must be a boolean; anything else is an error, as in Argo. An empty text is
//!   true (Argo does not evaluate an empty `when`); a blank one is an error.
//!
//! Like govaluate, the parser stops at the end of the first complete expression and ignores
//! what follows it when the grammar allows that (`(true) false` is true).
//!
//! # Errors
//!
//! Every failure, at parse or evaluation time, is an [`ExprError`] with a character offset
//! into the text. Where govaluate errors, this module errors, with the same typing; the
//! wording is this module's. The few deliberate differences: deeply nested expressions
//! (more than [`MAX_DEPTH`] levels) are rejected instead of exhausting the stack, a
//! trailing backslash is an error where govaluate panics, and regular expressions are
//! compiled by the `regex` crate after rewriting Go's ASCII-only classes (see `goregex`).

mod goregex;
mod gotime;

use std::fmt::Write as _;

use unicode_general_category::{GeneralCategory, get_general_category};

/// How deeply parentheses, prefixes and operator chains may nest.
pub const MAX_DEPTH: usize = 256;

/// A `when` expression that failed to parse or to evaluate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {})", .offset + 1)]
pub struct ExprError {
    /// Where the problem is: a 0-based offset in characters (not bytes) into the text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl ExprError {
    fn new(offset: usize, message: impl Into<String>) -> Self {
        ExprError {
            offset,
            message: message.into(),
        }
    }
}

/// A parsed `when` expression. Evaluate it with [`Expr::eval`].
#[derive(Debug, Clone)]
pub struct Expr {
    /// `None` for the empty text, which Argo treats as true.
    root: Option<Tree>,
}

#[derive(Debug, Clone)]
struct Tree(Option<Node>);

/// Parses the text of a `when` after template substitution.
pub fn parse(text: &str) -> Result<Expr, ExprError> {
    if text.is_empty() {
        return Ok(Expr { root: None });
    }
    let end = text.chars().count();
    // govaluate.NewEvaluableExpression: tokens, balance, syntax, regex literals.
    let mut tokens = lex(text)?;
    check_balance(&tokens)?;
    check_syntax(&tokens, end)?;
    compile_patterns(&mut tokens)?;
    // Argo: variables become strings, then NewEvaluableExpressionFromTokens checks again.
    for token in &mut tokens {
        if token.kind == Kind::Variable {
            token.kind = Kind::Str;
        }
    }
    check_syntax(&tokens, end)?;
    compile_patterns(&mut tokens)?;
    let root = Planner {
        tokens: &tokens,
        pos: 0,
        end,
    }
    .top(0)?;
    Ok(Expr {
        root: Some(Tree(root)),
    })
}

/// Parses and evaluates a substituted `when`: Argo's `shouldExecute`.
pub fn should_execute(text: &str) -> Result<bool, ExprError> {
    parse(text)?.eval()
}

impl Expr {
    /// Evaluates the expression. A result that is not a boolean is an error, as in Argo.
    pub fn eval(&self) -> Result<bool, ExprError> {
        let Some(Tree(root)) = &self.root else {
            return Ok(true);
        };
        match eval(root.as_ref())? {
            Value::Bool(b) => Ok(b),
            other => Err(ExprError::new(
                0,
                format!("expected a boolean result, got '{}'", go_format(&other)),
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tokens

/// govaluate's token kinds (without `FUNCTION`: Argo registers no functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unknown,
    Prefix,
    Numeric,
    Boolean,
    Str,
    Pattern,
    Time,
    Variable,
    Separator,
    Accessor,
    Comparator,
    LogicalOp,
    Modifier,
    Clause,
    ClauseClose,
    Ternary,
}

impl Kind {
    /// govaluate's lexer state table (`lexerState.go`): which kinds may follow this one.
    fn can_precede(self, next: Kind) -> bool {
        use Kind::*;
        let allowed: &[Kind] = match self {
            Unknown => &[
                Prefix, Numeric, Boolean, Variable, Pattern, Accessor, Str, Time, Clause,
            ],
            Clause => &[
                Prefix,
                Numeric,
                Boolean,
                Variable,
                Pattern,
                Accessor,
                Str,
                Time,
                Clause,
                ClauseClose,
            ],
            ClauseClose => &[
                Comparator,
                Modifier,
                Numeric,
                Boolean,
                Variable,
                Str,
                Pattern,
                Time,
                Clause,
                ClauseClose,
                LogicalOp,
                Ternary,
                Separator,
            ],
            Numeric | Boolean | Str | Variable => &[
                Modifier,
                Comparator,
                LogicalOp,
                ClauseClose,
                Ternary,
                Separator,
            ],
            Time | Pattern => &[Modifier, Comparator, LogicalOp, ClauseClose, Separator],
            Modifier => &[
                Prefix,
                Numeric,
                Variable,
                Accessor,
                Str,
                Boolean,
                Clause,
                ClauseClose,
            ],
            Comparator => &[
                Prefix,
                Numeric,
                Boolean,
                Variable,
                Accessor,
                Str,
                Time,
                Clause,
                ClauseClose,
                Pattern,
            ],
            LogicalOp => &[
                Prefix,
                Numeric,
                Boolean,
                Variable,
                Accessor,
                Str,
                Time,
                Clause,
                ClauseClose,
            ],
            Prefix => &[Numeric, Boolean, Variable, Accessor, Clause, ClauseClose],
            Ternary => &[
                Prefix, Numeric, Boolean, Str, Time, Variable, Accessor, Clause, Separator,
            ],
            Accessor => &[
                Clause,
                Modifier,
                Comparator,
                LogicalOp,
                ClauseClose,
                Ternary,
                Separator,
            ],
            Separator => &[
                Prefix, Numeric, Boolean, Str, Time, Variable, Accessor, Clause,
            ],
        };
        allowed.contains(&next)
    }

    /// Whether an expression may end after this kind.
    fn can_end(self) -> bool {
        use Kind::*;
        matches!(
            self,
            ClauseClose | Numeric | Boolean | Str | Time | Pattern | Variable | Accessor
        )
    }

    fn describe(self) -> &'static str {
        use Kind::*;
        match self {
            Unknown => "the start",
            Prefix => "prefix operator",
            Numeric => "number",
            Boolean => "boolean",
            Str => "string",
            Pattern => "regular expression",
            Time => "time",
            Variable => "word",
            Separator => "separator",
            Accessor => "accessor",
            Comparator => "comparator",
            LogicalOp => "logical operator",
            Modifier => "operator",
            Clause => "opening parenthesis",
            ClauseClose => "closing parenthesis",
            Ternary => "ternary operator",
        }
    }
}

/// govaluate's operator symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Neq,
    Gt,
    Lt,
    Gte,
    Lte,
    Req,
    Nreq,
    In,
    And,
    Or,
    Plus,
    Minus,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
    Mul,
    Div,
    Mod,
    Pow,
    Negate,
    Invert,
    BitNot,
    TernaryTrue,
    TernaryFalse,
    Coalesce,
    Separate,
}

impl Op {
    fn symbol(self) -> &'static str {
        use Op::*;
        match self {
            Eq => "==",
            Neq => "!=",
            Gt => ">",
            Lt => "<",
            Gte => ">=",
            Lte => "<=",
            Req => "=~",
            Nreq => "!~",
            In => "in",
            And => "&&",
            Or => "||",
            Plus => "+",
            Minus | Negate => "-",
            BitAnd => "&",
            BitOr => "|",
            BitXor => "^",
            Shl => "<<",
            Shr => ">>",
            Mul => "*",
            Div => "/",
            Mod => "%",
            Pow => "**",
            Invert => "!",
            BitNot => "~",
            TernaryTrue => "?",
            TernaryFalse => ":",
            Coalesce => "??",
            Separate => ",",
        }
    }

    fn prefix(s: &str) -> Option<Op> {
        Some(match s {
            "-" => Op::Negate,
            "!" => Op::Invert,
            "~" => Op::BitNot,
            _ => return None,
        })
    }

    fn modifier(s: &str) -> Option<Op> {
        use Op::*;
        Some(match s {
            "+" => Plus,
            "-" => Minus,
            "*" => Mul,
            "/" => Div,
            "%" => Mod,
            "**" => Pow,
            "&" => BitAnd,
            "|" => BitOr,
            "^" => BitXor,
            ">>" => Shr,
            "<<" => Shl,
            _ => return None,
        })
    }

    fn logical(s: &str) -> Option<Op> {
        Some(match s {
            "&&" => Op::And,
            "||" => Op::Or,
            _ => return None,
        })
    }

    fn comparator(s: &str) -> Option<Op> {
        use Op::*;
        Some(match s {
            "==" => Eq,
            "!=" => Neq,
            ">" => Gt,
            ">=" => Gte,
            "<" => Lt,
            "<=" => Lte,
            "=~" => Req,
            "!~" => Nreq,
            _ => return None,
        })
    }

    fn ternary(s: &str) -> Option<Op> {
        Some(match s {
            "?" => Op::TernaryTrue,
            ":" => Op::TernaryFalse,
            "??" => Op::Coalesce,
            _ => return None,
        })
    }

    /// The operand description of govaluate's type-error messages for this operator.
    fn role(self) -> &'static str {
        use Op::*;
        match self {
            Eq | Neq | Gt | Lt | Gte | Lte | Req | Nreq | In => "comparator",
            And | Or => "logical operator",
            TernaryTrue | TernaryFalse | Coalesce => "ternary operator",
            Negate | Invert | BitNot => "prefix",
            Separate => "separator",
            _ => "modifier",
        }
    }
}

/// A compiled regular expression together with its source (Go prints a pattern as its
/// source).
#[derive(Debug, Clone)]
struct Pattern {
    source: String,
    regex: regex::Regex,
}

#[derive(Debug, Clone)]
enum TokenValue {
    None,
    Num(f64),
    Bool(bool),
    Text(String),
    Op(Op),
    Path(Vec<String>),
    Pattern(Pattern),
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    value: TokenValue,
    /// Character offset of the token's first character.
    offset: usize,
}

impl Token {
    fn op(&self) -> Option<Op> {
        match self.value {
            TokenValue::Op(op) => Some(op),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        let what = self.kind.describe();
        match &self.value {
            TokenValue::None => match self.kind {
                Kind::Clause => "'('".to_string(),
                Kind::ClauseClose => "')'".to_string(),
                _ => what.to_string(),
            },
            TokenValue::Num(n) => format!("{what} {}", go_float(*n)),
            TokenValue::Bool(b) => format!("{what} {b}"),
            TokenValue::Text(s) => format!("{what} '{s}'"),
            TokenValue::Op(op) => format!("{what} '{}'", op.symbol()),
            TokenValue::Path(p) => format!("{what} '{}'", p.join(".")),
            TokenValue::Pattern(p) => format!("{what} '{}'", p.source),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Lexer (govaluate's parsing.go)

fn is_space(c: char) -> bool {
    // Go's unicode.IsSpace is the White_Space property, like char::is_whitespace.
    c.is_whitespace()
}

/// Go's `unicode.IsDigit`: general category Nd.
fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
        || (!c.is_ascii() && get_general_category(c) == GeneralCategory::DecimalNumber)
}

/// Go's `unicode.IsLetter`: general category L.
fn is_letter(c: char) -> bool {
    c.is_ascii_alphabetic()
        || (!c.is_ascii()
            && matches!(
                get_general_category(c),
                GeneralCategory::UppercaseLetter
                    | GeneralCategory::LowercaseLetter
                    | GeneralCategory::TitlecaseLetter
                    | GeneralCategory::ModifierLetter
                    | GeneralCategory::OtherLetter
            ))
}

fn is_numeric(c: char) -> bool {
    is_digit(c) || c == '.'
}

fn is_quote(c: char) -> bool {
    c == '\'' || c == '"'
}

fn is_hex_digit(c: char) -> bool {
    is_digit(c) || matches!(c.to_ascii_lowercase(), 'a'..='f')
}

fn is_variable_char(c: char) -> bool {
    is_letter(c) || is_digit(c) || c == '_' || c == '.'
}

fn is_symbol_char(c: char) -> bool {
    !(is_digit(c) || is_letter(c) || matches!(c, '(' | ')' | '[' | ']') || is_quote(c))
}

struct Stream {
    chars: Vec<char>,
    pos: usize,
}

impl Stream {
    fn can_read(&self) -> bool {
        self.pos < self.chars.len()
    }

    fn read(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        self.pos += 1;
        c
    }

    /// govaluate's `readUntilFalse`: reads while `condition` holds; a backslash escapes the
    /// next character. Returns the text and whether the read ended on a character that
    /// failed the condition (or on whitespace, when `break_whitespace`).
    fn read_until_false(
        &mut self,
        include_whitespace: bool,
        break_whitespace: bool,
        condition: impl Fn(char) -> bool,
    ) -> Result<(String, bool), ExprError> {
        let mut buffer = String::new();
        while let Some(c) = self.read() {
            if c == '\\' {
                // govaluate indexes past the end here and panics; we report it.
                let Some(escaped) = self.read() else {
                    return Err(ExprError::new(
                        self.pos - 2,
                        "a backslash at the end escapes nothing",
                    ));
                };
                buffer.push(escaped);
                continue;
            }
            if is_space(c) {
                if break_whitespace && !buffer.is_empty() {
                    return Ok((buffer, true));
                }
                if !include_whitespace {
                    continue;
                }
            }
            if condition(c) {
                buffer.push(c);
            } else {
                self.pos -= 1;
                return Ok((buffer, true));
            }
        }
        Ok((buffer, false))
    }

    /// govaluate's `readTokenUntilFalse`: re-reads from the character just read.
    fn read_token_until_false(
        &mut self,
        condition: impl Fn(char) -> bool,
    ) -> Result<String, ExprError> {
        self.pos -= 1;
        Ok(self.read_until_false(false, true, condition)?.0)
    }
}

fn lex(text: &str) -> Result<Vec<Token>, ExprError> {
    let mut stream = Stream {
        chars: text.chars().collect(),
        pos: 0,
    };
    let mut tokens = Vec::new();
    let mut state = Kind::Unknown;
    while stream.can_read() {
        let Some(token) = read_token(&mut stream, state)? else {
            break;
        };
        state = token.kind;
        tokens.push(token);
    }
    Ok(tokens)
}

fn read_token(stream: &mut Stream, state: Kind) -> Result<Option<Token>, ExprError> {
    while let Some(c) = stream.read() {
        if is_space(c) {
            continue;
        }
        let offset = stream.pos - 1;
        let token = |kind: Kind, value: TokenValue| -> Result<Option<Token>, ExprError> {
            Ok(Some(Token {
                kind,
                value,
                offset,
            }))
        };

        if is_numeric(c) {
            if c == '0' && stream.can_read() {
                let next = stream.read();
                if next == Some('x') && stream.can_read() {
                    let (digits, _) = stream.read_until_false(false, true, is_hex_digit)?;
                    let all_hex =
                        !digits.is_empty() && digits.chars().all(|d| d.is_ascii_hexdigit());
                    return match u64::from_str_radix(&digits, 16) {
                        Ok(v) if all_hex => token(Kind::Numeric, TokenValue::Num(v as f64)),
                        _ => Err(ExprError::new(
                            offset,
                            format!("unable to parse hex value '{digits}' to uint64"),
                        )),
                    };
                }
                stream.pos -= 1;
            }
            let digits = stream.read_token_until_false(is_numeric)?;
            return match parse_go_float(&digits) {
                Some(v) => token(Kind::Numeric, TokenValue::Num(v)),
                None => Err(ExprError::new(
                    offset,
                    format!("unable to parse numeric value '{digits}' to float64"),
                )),
            };
        }

        if c == ',' {
            return token(Kind::Separator, TokenValue::Op(Op::Separate));
        }

        if c == '[' {
            let (name, completed) = stream.read_until_false(true, false, |c| c != ']')?;
            if !completed {
                return Err(ExprError::new(offset, "unclosed parameter bracket"));
            }
            stream.pos += 1;
            return token(Kind::Variable, TokenValue::Text(name));
        }

        if is_letter(c) {
            let word = stream.read_token_until_false(is_variable_char)?;
            match word.as_str() {
                "true" => return token(Kind::Boolean, TokenValue::Bool(true)),
                "false" => return token(Kind::Boolean, TokenValue::Bool(false)),
                "in" | "IN" => return token(Kind::Comparator, TokenValue::Op(Op::In)),
                _ => {}
            }
            if word.contains('.') {
                if word.ends_with('.') {
                    return Err(ExprError::new(
                        offset,
                        format!("hanging accessor on token '{word}'"),
                    ));
                }
                let parts: Vec<String> = word.split('.').map(str::to_string).collect();
                for part in &parts[1..] {
                    if let Some(first) = part.chars().next()
                        && simple_upper(first) != first
                    {
                        return Err(ExprError::new(
                            offset,
                            format!(
                                "unable to access unexported field '{part}' in token '{word}' (hint: quote values that contain dots)"
                            ),
                        ));
                    }
                }
                return token(Kind::Accessor, TokenValue::Path(parts));
            }
            return token(Kind::Variable, TokenValue::Text(word));
        }

        if is_quote(c) {
            let (text, completed) = stream.read_until_false(true, false, |c| !is_quote(c))?;
            if !completed {
                return Err(ExprError::new(offset, "unclosed string literal"));
            }
            stream.pos += 1;
            return match gotime::parse_unix_seconds(&text) {
                Some(seconds) => token(Kind::Time, TokenValue::Num(seconds as f64)),
                None => token(Kind::Str, TokenValue::Text(text)),
            };
        }

        if c == '(' {
            return token(Kind::Clause, TokenValue::None);
        }
        if c == ')' {
            return token(Kind::ClauseClose, TokenValue::None);
        }

        let symbol = stream.read_token_until_false(is_symbol_char)?;
        if state.can_precede(Kind::Prefix)
            && let Some(op) = Op::prefix(&symbol)
        {
            return token(Kind::Prefix, TokenValue::Op(op));
        }
        let classified = Op::modifier(&symbol)
            .map(|op| (Kind::Modifier, op))
            .or_else(|| Op::logical(&symbol).map(|op| (Kind::LogicalOp, op)))
            .or_else(|| Op::comparator(&symbol).map(|op| (Kind::Comparator, op)))
            .or_else(|| Op::ternary(&symbol).map(|op| (Kind::Ternary, op)));
        return match classified {
            Some((kind, op)) => token(kind, TokenValue::Op(op)),
            None => Err(ExprError::new(
                offset,
                format!(
                    "invalid token: '{symbol}' (hint: try wrapping the affected expression in quotes (\"))"
                ),
            )),
        };
    }
    Ok(None)
}

/// Go's `unicode.ToUpper` (simple case mapping).
fn simple_upper(c: char) -> char {
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for the texts the lexer can produce: digits and dots,
/// plus whatever a backslash escaped in. Out-of-range values are errors, as in Go.
fn parse_go_float(text: &str) -> Option<f64> {
    if text.contains('_') {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    let spelled_infinite = {
        let t = text.trim_start_matches(['+', '-']).to_ascii_lowercase();
        t == "inf" || t == "infinity"
    };
    (value.is_finite() || spelled_infinite || value.is_nan()).then_some(value)
}

// ---------------------------------------------------------------------------------------
// Checks between lexing and planning

fn check_balance(tokens: &[Token]) -> Result<(), ExprError> {
    let mut open: Vec<usize> = Vec::new();
    let mut first_unmatched_close = None;
    let mut depth: i64 = 0;
    for token in tokens {
        match token.kind {
            Kind::Clause => {
                depth += 1;
                open.push(token.offset);
            }
            Kind::ClauseClose => {
                depth -= 1;
                if open.pop().is_none() && first_unmatched_close.is_none() {
                    first_unmatched_close = Some(token.offset);
                }
            }
            _ => {}
        }
    }
    // govaluate only compares the counts: `)(` passes here and fails the syntax check.
    match depth {
        0 => Ok(()),
        d if d > 0 => Err(ExprError::new(
            open.first().copied().unwrap_or(0),
            "unbalanced parenthesis: '(' is never closed",
        )),
        _ => Err(ExprError::new(
            first_unmatched_close.unwrap_or(0),
            "unbalanced parenthesis: ')' closes nothing",
        )),
    }
}

fn check_syntax(tokens: &[Token], end: usize) -> Result<(), ExprError> {
    let mut state = Kind::Unknown;
    let mut last: Option<&Token> = None;
    for token in tokens {
        if !state.can_precede(token.kind) {
            if let Some(prev) = last
                && prev.kind == Kind::Variable
                && token.kind == Kind::Clause
                && let TokenValue::Text(name) = &prev.value
            {
                return Err(ExprError::new(
                    prev.offset,
                    format!("undefined function '{name}'"),
                ));
            }
            let after = last.map_or_else(|| "the start".to_string(), Token::describe);
            return Err(ExprError::new(
                token.offset,
                format!("unexpected {} after {after}", token.describe()),
            ));
        }
        state = token.kind;
        last = Some(token);
    }
    if state.can_end() {
        Ok(())
    } else {
        Err(ExprError::new(end, "unexpected end of expression"))
    }
}

/// govaluate's `optimizeTokens`: a string right after `=~` or `!~` is compiled once.
fn compile_patterns(tokens: &mut [Token]) -> Result<(), ExprError> {
    for i in 0..tokens.len() {
        let is_regex_op = tokens[i].kind == Kind::Comparator
            && matches!(tokens[i].op(), Some(Op::Req | Op::Nreq));
        if !is_regex_op {
            continue;
        }
        let Some(next) = tokens.get_mut(i + 1) else {
            continue;
        };
        if next.kind != Kind::Str {
            continue;
        }
        let TokenValue::Text(source) = &next.value else {
            continue;
        };
        let regex = goregex::compile(source).map_err(|e| {
            ExprError::new(
                next.offset,
                format!("invalid regular expression '{source}': {e}"),
            )
        })?;
        next.value = TokenValue::Pattern(Pattern {
            source: source.clone(),
            regex,
        });
        next.kind = Kind::Pattern;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Planner (govaluate's stagePlanner.go)

#[derive(Debug, Clone)]
enum Node {
    Literal(Value),
    /// A parenthesised group (govaluate's NOOP stage).
    Group(Option<Box<Node>>),
    /// `a.B` or `a.B(args)`: govaluate looks `a` up among the parameters; Argo passes none.
    Access {
        path: Vec<String>,
        args: Option<Box<Node>>,
        offset: usize,
    },
    Unary {
        op: Op,
        operand: Option<Box<Node>>,
        offset: usize,
    },
    Binary {
        op: Op,
        left: Option<Box<Node>>,
        right: Option<Box<Node>>,
        offset: usize,
    },
}

/// The binary operator `token` stands for, if it is one, and its precedence level, loosest
/// first (`stagePlanner.go`: separator, ternary, `||`, `&&`, comparators, bitwise, shifts,
/// additive, multiplicative, exponent).
fn binary_level(token: &Token) -> Option<(Op, usize)> {
    use Op::*;
    let op = token.op()?;
    let level = match (token.kind, op) {
        (Kind::Separator, _) => 0,
        (Kind::Ternary, _) => 1,
        (Kind::LogicalOp, Or) => 2,
        (Kind::LogicalOp, _) => 3,
        (Kind::Comparator, _) => 4,
        (Kind::Modifier, BitAnd | BitOr | BitXor) => 5,
        (Kind::Modifier, Shl | Shr) => 6,
        (Kind::Modifier, Plus | Minus) => 7,
        (Kind::Modifier, Mul | Div | Mod) => 8,
        (Kind::Modifier, Pow) => 9,
        _ => return None,
    };
    Some((op, level))
}

fn depth_of(node: &Option<Box<Node>>) -> usize {
    node.as_deref().map_or(0, Node::depth)
}

impl Node {
    fn depth(&self) -> usize {
        // Only called while building, on children whose depth is already bounded; the
        // recursion is as deep as the tree, which MAX_DEPTH bounds.
        match self {
            Node::Literal(_) => 1,
            Node::Group(inner) => 1 + depth_of(inner),
            Node::Access { args, .. } => 1 + depth_of(args),
            Node::Unary { operand, .. } => 1 + depth_of(operand),
            Node::Binary { left, right, .. } => 1 + depth_of(left).max(depth_of(right)),
        }
    }
}

struct Planner<'a> {
    tokens: &'a [Token],
    pos: usize,
    end: usize,
}

impl Planner<'_> {
    fn too_deep(&self, offset: usize) -> ExprError {
        ExprError::new(
            offset,
            format!("expression is nested more than {MAX_DEPTH} levels deep"),
        )
    }

    fn here(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |t| t.offset)
    }

    /// govaluate's `planTokens`: a whole expression from the current token.
    fn top(&mut self, nesting: usize) -> Result<Option<Node>, ExprError> {
        if nesting > MAX_DEPTH {
            return Err(self.too_deep(self.here()));
        }
        if self.pos >= self.tokens.len() {
            return Ok(None);
        }
        self.binary(0, nesting)
    }

    /// Operators of level `min` and tighter. govaluate plans each level recursively, parses
    /// `a - b - c` as `a - (b - c)` and then mirrors runs of equal precedence
    /// (`reorderStages`); the result is the left-associative tree that precedence climbing
    /// builds directly.
    fn binary(&mut self, min: usize, nesting: usize) -> Result<Option<Node>, ExprError> {
        let mut left = self.operand(nesting)?;
        while let Some(token) = self.tokens.get(self.pos) {
            let Some((op, level)) = binary_level(token) else {
                break;
            };
            if level < min {
                break;
            }
            self.pos += 1;
            let right = self.binary(level + 1, nesting)?;
            let node = Node::Binary {
                op,
                left: left.map(Box::new),
                right: right.map(Box::new),
                offset: token.offset,
            };
            if node.depth() > MAX_DEPTH {
                return Err(self.too_deep(token.offset));
            }
            left = Some(node);
        }
        Ok(left)
    }

    /// govaluate's `planFunction` / `planAccessor` / `planValue`.
    fn operand(&mut self, nesting: usize) -> Result<Option<Node>, ExprError> {
        let Some(token) = self.tokens.get(self.pos) else {
            return Ok(None);
        };
        self.pos += 1;
        let literal = |v: Value| -> Result<Option<Node>, ExprError> { Ok(Some(Node::Literal(v))) };
        match (&token.kind, &token.value) {
            (Kind::Accessor, TokenValue::Path(path)) => {
                // A clause right after an accessor is a method call whose arguments are the
                // whole rest of the expression from the `(`, as govaluate plans it.
                let args = if self
                    .tokens
                    .get(self.pos)
                    .is_some_and(|t| t.kind == Kind::Clause)
                {
                    self.top(nesting + 1)?.map(Box::new)
                } else {
                    None
                };
                Ok(Some(Node::Access {
                    path: path.clone(),
                    args,
                    offset: token.offset,
                }))
            }
            (Kind::Clause, _) => {
                let inner = self.top(nesting + 1)?;
                // govaluate skips one token, trusting it to be the `)`.
                if self.pos >= self.tokens.len() {
                    return Err(ExprError::new(self.end, "unexpected end of expression"));
                }
                self.pos += 1;
                Ok(Some(Node::Group(inner.map(Box::new))))
            }
            (Kind::ClauseClose, _) => {
                // An empty operand, as in `()` or `(1 == )`: govaluate's nil stage.
                self.pos -= 1;
                Ok(None)
            }
            (Kind::Prefix, TokenValue::Op(op)) => {
                if nesting > MAX_DEPTH {
                    return Err(self.too_deep(token.offset));
                }
                let operand = self.operand(nesting + 1)?;
                Ok(Some(Node::Unary {
                    op: *op,
                    operand: operand.map(Box::new),
                    offset: token.offset,
                }))
            }
            (Kind::Numeric | Kind::Time, TokenValue::Num(n)) => literal(Value::Num(*n)),
            (Kind::Boolean, TokenValue::Bool(b)) => literal(Value::Bool(*b)),
            (Kind::Str | Kind::Variable, TokenValue::Text(s)) => literal(Value::Str(s.clone())),
            (Kind::Pattern, TokenValue::Pattern(p)) => literal(Value::Pattern(p.clone())),
            _ => Err(ExprError::new(
                token.offset,
                format!("unexpected {} where a value was expected", token.describe()),
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Evaluation (govaluate's evaluationStage.go and EvaluableExpression.go)

#[derive(Debug, Clone)]
enum Value {
    Nil,
    Bool(bool),
    Num(f64),
    Str(String),
    Pattern(Pattern),
    Array(Vec<Value>),
}

fn eval(node: Option<&Node>) -> Result<Value, ExprError> {
    let Some(node) = node else {
        return Ok(Value::Nil);
    };
    match node {
        Node::Literal(v) => Ok(v.clone()),
        Node::Group(inner) => eval(inner.as_deref()),
        Node::Access { path, args, offset } => {
            eval(args.as_deref())?;
            Err(ExprError::new(
                *offset,
                format!(
                    "no parameter '{}' found: '{}' is an accessor (hint: quote values that contain dots)",
                    path[0],
                    path.join(".")
                ),
            ))
        }
        Node::Unary {
            op,
            operand,
            offset,
        } => {
            let v = eval(operand.as_deref())?;
            let prefix_error = |v: &Value| {
                ExprError::new(
                    *offset,
                    format!(
                        "value '{}' cannot be used with the prefix '{}'",
                        go_format(v),
                        op.symbol()
                    ),
                )
            };
            match (op, &v) {
                (Op::Negate, Value::Num(n)) => Ok(Value::Num(-n)),
                (Op::Invert, Value::Bool(b)) => Ok(Value::Bool(!b)),
                (Op::BitNot, Value::Num(n)) => Ok(Value::Num(!go_f64_to_i64(*n) as f64)),
                _ => Err(prefix_error(&v)),
            }
        }
        Node::Binary {
            op,
            left,
            right,
            offset,
        } => eval_binary(*op, left.as_deref(), right.as_deref(), *offset),
    }
}

fn type_error(offset: usize, op: Op, value: &Value, need: &str) -> ExprError {
    ExprError::new(
        offset,
        format!(
            "value '{}' cannot be used with the {} '{}'{need}",
            go_format(value),
            op.role(),
            op.symbol()
        ),
    )
}

fn eval_binary(
    op: Op,
    left: Option<&Node>,
    right: Option<&Node>,
    offset: usize,
) -> Result<Value, ExprError> {
    use Op::*;
    let l = eval(left)?;
    // Short-circuits, before the right side is evaluated or anything is type-checked.
    match (op, &l) {
        (And, Value::Bool(false)) => return Ok(Value::Bool(false)),
        (Or, Value::Bool(true)) => return Ok(Value::Bool(true)),
        (TernaryTrue, Value::Bool(false)) => return Ok(Value::Nil),
        _ => {}
    }
    if matches!(op, TernaryFalse | Coalesce) && !matches!(l, Value::Nil) {
        return Ok(l);
    }
    let r = eval(right)?;
    let not_number = ", it is not a number";
    let not_bool = ", it is not a bool";
    match op {
        Eq => Ok(Value::Bool(deep_equal(&l, &r))),
        Neq => Ok(Value::Bool(!deep_equal(&l, &r))),
        Gt | Lt | Gte | Lte => {
            let ordering = match (&l, &r) {
                (Value::Num(a), Value::Num(b)) => a.partial_cmp(b),
                (Value::Str(a), Value::Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
                // govaluate reports the left value whichever side is wrong.
                _ => return Err(type_error(offset, op, &l, not_number)),
            };
            Ok(Value::Bool(match (op, ordering) {
                (_, None) => false, // NaN compares false in Go
                (Gt, Some(o)) => o.is_gt(),
                (Lt, Some(o)) => o.is_lt(),
                (Gte, Some(o)) => o.is_ge(),
                (_, Some(o)) => o.is_le(),
            }))
        }
        Req | Nreq => {
            let Value::Str(text) = &l else {
                return Err(type_error(offset, op, &l, not_number));
            };
            let matched = match &r {
                Value::Pattern(p) => p.regex.is_match(text),
                Value::Str(source) => goregex::compile(source)
                    .map_err(|e| {
                        ExprError::new(
                            offset,
                            format!("unable to compile regexp pattern '{source}': {e}"),
                        )
                    })?
                    .is_match(text),
                _ => return Err(type_error(offset, op, &r, not_number)),
            };
            Ok(Value::Bool(matched == (op == Req)))
        }
        In => {
            let Value::Array(items) = &r else {
                return Err(type_error(offset, op, &r, not_number));
            };
            for item in items {
                if interface_equal(&l, item).map_err(|m| ExprError::new(offset, m))? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        And | Or => {
            let (Value::Bool(a), Value::Bool(b)) = (&l, &r) else {
                let bad = if matches!(l, Value::Bool(_)) { &r } else { &l };
                return Err(type_error(offset, op, bad, not_bool));
            };
            Ok(Value::Bool(if op == And { *a && *b } else { *a || *b }))
        }
        Plus => match (&l, &r) {
            (Value::Num(a), Value::Num(b)) => Ok(Value::Num(a + b)),
            (Value::Str(_), _) | (_, Value::Str(_)) => {
                Ok(Value::Str(format!("{}{}", go_format(&l), go_format(&r))))
            }
            _ => Err(type_error(offset, op, &l, not_number)),
        },
        Minus | Mul | Div | Mod | Pow | BitAnd | BitOr | BitXor | Shl | Shr => {
            let Value::Num(a) = l else {
                return Err(type_error(offset, op, &l, not_number));
            };
            let Value::Num(b) = r else {
                return Err(type_error(offset, op, &r, not_number));
            };
            Ok(Value::Num(match op {
                Minus => a - b,
                Mul => a * b,
                Div => a / b,
                Mod => a % b,
                Pow => go_pow(a, b),
                BitAnd => (go_f64_to_i64(a) & go_f64_to_i64(b)) as f64,
                BitOr => (go_f64_to_i64(a) | go_f64_to_i64(b)) as f64,
                BitXor => (go_f64_to_i64(a) ^ go_f64_to_i64(b)) as f64,
                Shl => shift(go_f64_to_u64(a), go_f64_to_u64(b), true) as f64,
                _ => shift(go_f64_to_u64(a), go_f64_to_u64(b), false) as f64,
            }))
        }
        TernaryTrue => match l {
            Value::Bool(true) => Ok(r),
            _ => Err(type_error(offset, op, &l, not_bool)),
        },
        // Reached only with a nil left side.
        TernaryFalse | Coalesce => Ok(r),
        Separate => Ok(match l {
            Value::Array(mut items) => {
                items.push(r);
                Value::Array(items)
            }
            other => Value::Array(vec![other, r]),
        }),
        Negate | Invert | BitNot => Err(ExprError::new(
            offset,
            "prefix operator used as a binary operator",
        )),
    }
}

/// Go's `reflect.DeepEqual` on govaluate values.
fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Num(x), Value::Num(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Pattern(x), Value::Pattern(y)) => x.source == y.source,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| deep_equal(a, b))
        }
        _ => false,
    }
}

/// Go's `==` on two `interface{}` values (used by `in`): different dynamic types are
/// unequal; two slices cannot be compared and make Go panic, reported here as an error.
fn interface_equal(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(match (a, b) {
        (Value::Array(_), Value::Array(_)) => {
            return Err("runtime error: comparing uncomparable type []interface {}".to_string());
        }
        // Two compiled patterns are distinct pointers.
        (Value::Pattern(_), Value::Pattern(_)) => false,
        _ => deep_equal(a, b),
    })
}

fn shift(value: u64, by: u64, left: bool) -> u64 {
    let by = u32::try_from(by).unwrap_or(u32::MAX);
    let shifted = if left {
        value.checked_shl(by)
    } else {
        value.checked_shr(by)
    };
    shifted.unwrap_or(0)
}

/// Go's `math.Pow`, which differs from `powf` only in a few special cases.
fn go_pow(x: f64, y: f64) -> f64 {
    if y == 0.0 || x == 1.0 {
        return 1.0;
    }
    x.powf(y)
}

const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// Go's `int64(f)` on amd64 (where Argo's controller usually runs): truncation, and the
/// "integer indefinite" value for NaN and out-of-range inputs.
fn go_f64_to_i64(f: f64) -> i64 {
    if (-TWO_POW_63..TWO_POW_63).contains(&f) {
        f as i64
    } else {
        i64::MIN
    }
}

/// Go's `uint64(f)` on amd64.
fn go_f64_to_u64(f: f64) -> u64 {
    if f < TWO_POW_63 {
        go_f64_to_i64(f) as u64
    } else {
        (go_f64_to_i64(f - TWO_POW_63) as u64) ^ (1 << 63)
    }
}

/// Go's `fmt` verb `%v` on a govaluate value.
fn go_format(v: &Value) -> String {
    match v {
        Value::Nil => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Num(n) => go_float(*n),
        Value::Str(s) => s.clone(),
        Value::Pattern(p) => p.source.clone(),
        Value::Array(items) => {
            let mut out = String::from("[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&go_format(item));
            }
            out.push(']');
            out
        }
    }
}

/// Go's `%v` of a float64: `strconv.FormatFloat(f, 'g', -1, 64)`, which switches to an
/// exponent when it is below -4 or at least 6 (`1e+06`, `123456`, `1e-05`).
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0");
    }
    // Rust's `{:e}` prints the shortest digits that round-trip, as Go's shortest mode does.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::from(sign);
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if exp < 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', int_len - digits.len()));
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

#[cfg(test)]
mod tests;
