//! A fast reader for the YAML that manifests are written in: block mappings and sequences,
//! plain scalars on one line, quoted scalars (folded over lines), literal and folded block
//! scalars, flow collections on one line, comments and `---` between documents. It makes the
//! node events granit-parser makes, at the same positions, in one pass without a token queue,
//! straight into the tree builder: a sixth of granit-parser's time on the manifests of
//! `bench/check` (BENCHMARKS.md).
//!
//! Everything else it leaves to granit-parser, by giving up on the whole text: anchors,
//! aliases, tags, directives, explicit keys (`?`), `...`, tabs where they could be
//! indentation or separation, text that is not printable ASCII, multi-line plain scalars and
//! flow collections, the rarer forms of block scalars (an indentation indicator, leading empty
//! lines, more-indented folded lines, no final line break), nesting deeper than the budget,
//! and every error, of syntax or of the tree (a duplicate key): granit-parser then reports
//! it, so what is accepted and what errors say stay granit-parser's. The tests compare both
//! readers' events on every YAML file of the repository and on generated and mutated YAML.

use std::borrow::Cow;

use serde_saphyr::granit_parser::ScalarStyle;

use super::build::Builder;
use super::events::{Ev, Item, MAX_DEPTH, Origin};
use super::{Node, Pos};

/// The text uses YAML that this reader leaves to granit-parser (or is not valid YAML).
struct GiveUp;

type Scan<T> = Result<T, GiveUp>;

/// Where the events go.
trait Sink<'a> {
    fn event(&mut self, ev: Ev<'a>, pos: Pos) -> Scan<()>;
}

/// Trees built as the events come, as [`super::parse_documents`] builds them from
/// granit-parser's.
struct Documents<'a> {
    builder: Builder<'a>,
    docs: Vec<Node>,
}

impl<'a> Sink<'a> for Documents<'a> {
    fn event(&mut self, ev: Ev<'a>, pos: Pos) -> Scan<()> {
        let item = Item {
            ev,
            pos,
            origin: Origin::Direct,
        };
        // an error (a duplicate key) is left to granit-parser's reading too, so that errors
        // are always found as granit-parser finds them
        super::add(&mut self.builder, &mut self.docs, item).map_err(|_| GiveUp)
    }
}

impl<'a> Sink<'a> for Vec<(Ev<'a>, Pos)> {
    fn event(&mut self, ev: Ev<'a>, pos: Pos) -> Scan<()> {
        self.push((ev, pos));
        Ok(())
    }
}

/// The documents of `text`, as [`super::parse_documents`] makes them from granit-parser's
/// events; `None` when granit-parser must read the text.
pub(super) fn parse(text: &str) -> Option<Vec<Node>> {
    let sink = Documents {
        builder: Builder::new(),
        docs: Vec::new(),
    };
    read(text, sink).map(|documents| documents.docs)
}

/// The node events of `text` and where each is (without the stream and document events),
/// to compare with granit-parser's.
#[cfg(test)]
pub(super) fn scan(text: &str) -> Option<Vec<(Ev<'_>, Pos)>> {
    read(text, Vec::new())
}

fn read<'a, S: Sink<'a>>(text: &'a str, sink: S) -> Option<S> {
    let printable_ascii = text
        .bytes()
        .all(|b| b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b));
    if !printable_ascii {
        return None;
    }
    let mut scanner = Scanner {
        text,
        b: text.as_bytes(),
        i: 0,
        line: 1,
        line_start: 0,
        depth: 0,
        sink,
    };
    scanner.stream().ok()?;
    Some(scanner.sink)
}

/// What follows a node: the first content of a line (its indentation), a `---` line, or the
/// end of the text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    Line(usize),
    Document,
    End,
}

/// The block collection a node is in, with its indentation.
#[derive(Clone, Copy)]
enum Parent {
    Root,
    Map(usize),
    Seq(usize),
}

impl Parent {
    /// Lines that continue a node in this parent are indented more than this.
    fn indent(self) -> Option<usize> {
        match self {
            Parent::Root => None,
            Parent::Map(n) | Parent::Seq(n) => Some(n),
        }
    }
}

#[derive(Clone, Copy)]
enum Chomp {
    Strip,
    Clip,
    Keep,
}

/// Why a plain scalar ends.
enum Stop {
    /// The end of the line, or a comment.
    Line,
    /// `: ` (or `:` at the end of the line) at this offset: the scalar is a key.
    Colon(usize),
}

/// The longest implicit key YAML allows.
const MAX_KEY: usize = 1024;

struct Scanner<'a, S> {
    text: &'a str,
    b: &'a [u8],
    /// The offset read next.
    i: usize,
    /// The 1-based line of `i`, and the offset where that line starts.
    line: u32,
    line_start: usize,
    depth: usize,
    sink: S,
}

fn blank_or_end(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0)
}

fn scalar(text: Cow<'_, str>, style: ScalarStyle) -> Ev<'_> {
    Ev::Scalar {
        text,
        style,
        tag: None,
    }
}

fn plain_text(text: &str) -> Ev<'_> {
    scalar(Cow::Borrowed(text), ScalarStyle::Plain)
}

/// Whether a plain scalar can start with `first`, followed by `next` (else `first` is an
/// indicator, or the scalar is empty).
fn plain_can_start(first: u8, next: u8) -> bool {
    match first {
        b'-' | b'?' | b':' => !matches!(
            next,
            b' ' | b'\t' | b'\n' | 0 | b',' | b'[' | b']' | b'{' | b'}'
        ),
        b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\''
        | b'"' | b'%' | b'@' | b'`' | b'\n' | b' ' | b'\t' | 0 => false,
        _ => true,
    }
}

impl<'a, S: Sink<'a>> Scanner<'a, S> {
    /// The byte at `i`; 0 past the end (a NUL byte is not in the text).
    fn at(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(0)
    }

    fn peek(&self) -> u8 {
        self.at(self.i)
    }

    fn col(&self) -> usize {
        self.i - self.line_start
    }

    fn pos(&self) -> Pos {
        self.pos_at(self.col())
    }

    /// The position of the 0-based column `col` of the current line.
    fn pos_at(&self, col: usize) -> Pos {
        Pos {
            line: self.line,
            column: u32::try_from(col + 1).unwrap_or(u32::MAX),
        }
    }

    /// How many spaces start the rest of the text.
    fn indentation(&self) -> usize {
        self.b[self.i..].iter().take_while(|&&c| c == b' ').count()
    }

    fn push(&mut self, ev: Ev<'a>, pos: Pos) -> Scan<()> {
        self.sink.event(ev, pos)
    }

    /// Steps over the line break at `i`.
    fn newline(&mut self) {
        self.i += 1;
        self.line += 1;
        self.line_start = self.i;
    }

    /// Skips spaces; how many. A tab here could be indentation or separation: given up.
    fn spaces(&mut self) -> Scan<usize> {
        let from = self.i;
        while self.peek() == b' ' {
            self.i += 1;
        }
        if self.peek() == b'\t' {
            return Err(GiveUp);
        }
        Ok(self.i - from)
    }

    fn skip_to_line_end(&mut self) {
        while !matches!(self.peek(), b'\n' | 0) {
            self.i += 1;
        }
    }

    /// The rest of the line holds spaces and maybe a comment, and nothing else.
    fn end_of_line(&mut self) -> Scan<()> {
        let spaces = self.spaces()?;
        match self.peek() {
            b'\n' | 0 => Ok(()),
            b'#' if spaces > 0 => {
                self.skip_to_line_end();
                Ok(())
            }
            _ => Err(GiveUp),
        }
    }

    fn enter(&mut self) -> Scan<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(GiveUp);
        }
        Ok(())
    }

    /// Whether `---` or `...` starts the line at `i`.
    fn marker(&self, c: u8) -> bool {
        self.col() == 0
            && self.b[self.i..].starts_with(&[c, c, c])
            && blank_or_end(self.at(self.i + 3))
    }

    /// From the end of a line (or the start of one), the next line with content, past empty
    /// and comment lines: `i` is left on its first character, on `---`, or at the end.
    fn next_content(&mut self) -> Scan<Next> {
        loop {
            if self.peek() == b'\n' {
                self.newline();
            }
            if self.marker(b'-') {
                return Ok(Next::Document);
            }
            if self.marker(b'.') {
                return Err(GiveUp);
            }
            self.spaces()?;
            match self.peek() {
                0 => return Ok(Next::End),
                b'\n' => {}
                b'#' => self.skip_to_line_end(),
                _ => return Ok(Next::Line(self.col())),
            }
        }
    }

    fn is_seq_entry(&self) -> bool {
        self.peek() == b'-' && blank_or_end(self.at(self.i + 1))
    }

    fn stream(&mut self) -> Scan<()> {
        let mut next = self.next_content()?;
        loop {
            next = match next {
                Next::End => return Ok(()),
                Next::Line(_) => self.root()?,
                Next::Document => {
                    self.i += 3;
                    let after_marker = self.pos();
                    self.end_of_line()?;
                    match self.next_content()? {
                        Next::Line(_) => self.root()?,
                        other => {
                            self.push(plain_text("~"), after_marker)?;
                            other
                        }
                    }
                }
            };
        }
    }

    /// A document's node; what follows must be the next document or the end.
    fn root(&mut self) -> Scan<Next> {
        match self.node(Parent::Root, false)? {
            Next::Line(_) => Err(GiveUp),
            next => Ok(next),
        }
    }

    /// The node that starts at `i`. `inline`: it follows a key on the same line, where a
    /// block collection cannot start.
    fn node(&mut self, parent: Parent, inline: bool) -> Scan<Next> {
        let col = self.col();
        match self.peek() {
            b'-' if blank_or_end(self.at(self.i + 1)) => {
                if inline {
                    return Err(GiveUp);
                }
                self.block_seq(col, false)
            }
            b'[' | b'{' => {
                self.flow()?;
                self.end_of_line()?;
                self.next_content()
            }
            b'|' | b'>' => self.block_scalar(parent),
            b'\'' | b'"' => {
                if self.quoted_key_follows() {
                    if inline {
                        return Err(GiveUp);
                    }
                    return self.block_map(col);
                }
                self.quoted_scalar(parent.indent())?;
                self.end_of_line()?;
                self.next_content()
            }
            _ => match self.plain_end(self.i)? {
                (_, Stop::Colon(_)) => {
                    if inline {
                        return Err(GiveUp);
                    }
                    self.block_map(col)
                }
                (end, Stop::Line) => {
                    let pos = self.pos();
                    self.push(plain_text(&self.text[self.i..end]), pos)?;
                    self.i = end;
                    self.end_of_line()?;
                    self.next_content()
                }
            },
        }
    }

    /// Where the plain scalar (block context) that starts at `start` ends, trailing spaces
    /// excluded, and why.
    fn plain_end(&self, start: usize) -> Scan<(usize, Stop)> {
        if !plain_can_start(self.at(start), self.at(start + 1)) {
            return Err(GiveUp);
        }
        let (mut j, mut end) = (start, start);
        loop {
            match self.at(j) {
                b'\n' | 0 => return Ok((end, Stop::Line)),
                b':' => match self.at(j + 1) {
                    b' ' | b'\n' | 0 => {
                        if end - start > MAX_KEY {
                            return Err(GiveUp);
                        }
                        return Ok((end, Stop::Colon(j)));
                    }
                    b'\t' => return Err(GiveUp),
                    _ => {
                        j += 1;
                        end = j;
                    }
                },
                b'#' if self.at(j - 1) == b' ' => return Ok((end, Stop::Line)),
                b' ' => j += 1,
                b'\t' => return Err(GiveUp),
                _ => {
                    j += 1;
                    end = j;
                }
            }
        }
    }

    /// Whether the quoted scalar at `i` is a key: it closes on this line, then `: `.
    fn quoted_key_follows(&self) -> bool {
        let quote = self.peek();
        let mut j = self.i + 1;
        loop {
            match self.at(j) {
                b'\n' | 0 => return false,
                b'\\' if quote == b'"' => j += 2,
                c if c == quote => {
                    if quote == b'\'' && self.at(j + 1) == b'\'' {
                        j += 2;
                        continue;
                    }
                    j += 1;
                    while self.at(j) == b' ' {
                        j += 1;
                    }
                    return self.at(j) == b':' && matches!(self.at(j + 1), b' ' | b'\n' | 0);
                }
                _ => j += 1,
            }
        }
    }

    /// A mapping key at `i`, then `:`; `i` is left after the `:`.
    fn key(&mut self) -> Scan<()> {
        let pos = self.pos();
        if matches!(self.peek(), b'\'' | b'"') {
            self.quoted_scalar(None)?;
            self.spaces()?;
            if self.peek() != b':' || !matches!(self.at(self.i + 1), b' ' | b'\n' | 0) {
                return Err(GiveUp);
            }
            self.i += 1;
            return Ok(());
        }
        match self.plain_end(self.i)? {
            (end, Stop::Colon(colon)) => {
                self.push(plain_text(&self.text[self.i..end]), pos)?;
                self.i = colon + 1;
                Ok(())
            }
            (_, Stop::Line) => Err(GiveUp),
        }
    }

    /// A block mapping whose first key is at `i`, in column `indent`.
    fn block_map(&mut self, indent: usize) -> Scan<Next> {
        self.enter()?;
        let start = self.pos();
        self.push(Ev::MapStart { tag: None }, start)?;
        loop {
            self.key()?;
            // the empty value of `key:` is reported where the `:` is
            let colon = self.pos_at(self.col() - 1);
            let spaces = self.spaces()?;
            match self.value(Parent::Map(indent), spaces, Some(colon))? {
                Next::Line(col) if col == indent && !self.is_seq_entry() => {}
                Next::Line(col) if col >= indent => return Err(GiveUp),
                next => return self.close(Ev::MapEnd, next),
            }
        }
    }

    /// A block sequence whose first `-` is at `i`, in column `indent`; `indentless`: it is
    /// the value of a key in the same column.
    fn block_seq(&mut self, indent: usize, indentless: bool) -> Scan<Next> {
        self.enter()?;
        let mut first = true;
        loop {
            let dash = self.pos();
            self.i += 1;
            let spaces = self.spaces()?;
            if first {
                // granit-parser puts an indentless sequence where its first item is
                let start = if indentless {
                    if matches!(self.peek(), b'\n' | 0 | b'#') {
                        return Err(GiveUp);
                    }
                    self.pos()
                } else {
                    dash
                };
                self.push(Ev::SeqStart { tag: None }, start)?;
                first = false;
            }
            // the empty value of `-` is reported where its line ends
            match self.value(Parent::Seq(indent), spaces, None)? {
                Next::Line(col) if col == indent && self.is_seq_entry() => {}
                Next::Line(col) if col > indent || (col == indent && !indentless) => {
                    return Err(GiveUp);
                }
                next => return self.close(Ev::SeqEnd, next),
            }
        }
    }

    /// Ends the innermost block collection: its end event, where `next` is.
    fn close(&mut self, end: Ev<'a>, next: Next) -> Scan<Next> {
        let pos = self.pos();
        self.push(end, pos)?;
        self.depth -= 1;
        Ok(next)
    }

    /// The value after a key's `:` or an item's `-` and the `spaces` after it: on this line
    /// (after a key, it cannot be a block collection) or on the lines below. An empty value is
    /// reported at `empty`, or where the line ends.
    fn value(&mut self, parent: Parent, spaces: usize, empty: Option<Pos>) -> Scan<Next> {
        match self.peek() {
            b'\n' | 0 => {}
            b'#' if spaces > 0 => self.skip_to_line_end(),
            _ => return self.node(parent, matches!(parent, Parent::Map(_))),
        }
        let empty = empty.unwrap_or_else(|| self.pos());
        self.value_below(parent, empty)
    }

    /// The value of a key or item whose line ends after its indicator: a node on the lines
    /// below, or an empty value reported at `empty`.
    fn value_below(&mut self, parent: Parent, empty: Pos) -> Scan<Next> {
        let next = self.next_content()?;
        if let Next::Line(col) = next {
            match parent {
                Parent::Map(indent) | Parent::Seq(indent) if col > indent => {
                    return self.node(parent, false);
                }
                Parent::Map(indent) if col == indent && self.is_seq_entry() => {
                    return self.block_seq(col, true);
                }
                _ => {}
            }
        }
        self.push(plain_text("~"), empty)?;
        Ok(next)
    }

    /// The event of the quoted scalar at `i` (see [`Self::quoted`]).
    fn quoted_scalar(&mut self, fold_indent: Option<usize>) -> Scan<()> {
        let pos = self.pos();
        let (text, style) = self.quoted(fold_indent)?;
        self.push(scalar(text, style), pos)
    }

    /// A single- or double-quoted scalar at `i`; `i` is left after its closing quote. It may
    /// continue on lines indented more than `fold_indent`; with `None`, it must end on this
    /// line.
    fn quoted(&mut self, fold_indent: Option<usize>) -> Scan<(Cow<'a, str>, ScalarStyle)> {
        let quote = self.peek();
        let style = if quote == b'"' {
            ScalarStyle::DoubleQuoted
        } else {
            ScalarStyle::SingleQuoted
        };
        self.i += 1;
        let start = self.i;
        // the text so far, once it differs from the source; `from` starts what is not in it yet
        let mut owned: Option<String> = None;
        let mut from = start;
        loop {
            match self.peek() {
                0 => return Err(GiveUp),
                b'\'' if quote == b'\'' && self.at(self.i + 1) == b'\'' => {
                    owned
                        .get_or_insert_with(String::new)
                        .push_str(&self.text[from..=self.i]);
                    self.i += 2;
                    from = self.i;
                }
                c if c == quote => {
                    let text = match owned {
                        None => Cow::Borrowed(&self.text[start..self.i]),
                        Some(mut s) => {
                            s.push_str(&self.text[from..self.i]);
                            Cow::Owned(s)
                        }
                    };
                    self.i += 1;
                    return Ok((text, style));
                }
                b'\\' if quote == b'"' => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&self.text[from..self.i]);
                    if self.at(self.i + 1) == b'\n' {
                        // an escaped line break: nothing, and the next line's indentation
                        self.i += 1;
                        self.continuation(fold_indent)?;
                        if self.peek() == b'\n' {
                            return Err(GiveUp);
                        }
                    } else {
                        let (c, len) = self.escape()?;
                        s.push(c);
                        self.i += len;
                    }
                    from = self.i;
                }
                b'\n' => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(self.text[from..self.i].trim_end_matches([' ', '\t']));
                    let mut breaks = 0;
                    loop {
                        self.continuation(fold_indent)?;
                        if self.peek() != b'\n' {
                            break;
                        }
                        breaks += 1;
                    }
                    if breaks == 0 {
                        s.push(' ');
                    } else {
                        s.extend(std::iter::repeat_n('\n', breaks));
                    }
                    from = self.i;
                }
                _ => self.i += 1,
            }
        }
    }

    /// From the line break at `i`, past the next line's indentation, which must be deeper
    /// than `fold_indent` unless the line is empty.
    fn continuation(&mut self, fold_indent: Option<usize>) -> Scan<()> {
        let Some(indent) = fold_indent else {
            return Err(GiveUp);
        };
        self.newline();
        if self.marker(b'-') || self.marker(b'.') {
            return Err(GiveUp);
        }
        self.spaces()?;
        match self.peek() {
            b'\n' => Ok(()),
            0 => Err(GiveUp),
            _ if self.col() > indent => Ok(()),
            _ => Err(GiveUp),
        }
    }

    /// The escape sequence at `i` (a `\`) in a double-quoted scalar: the character, and the
    /// sequence's length.
    fn escape(&self) -> Scan<(char, usize)> {
        let simple = match self.at(self.i + 1) {
            b'0' => '\0',
            b'a' => '\u{7}',
            b'b' => '\u{8}',
            b't' | b'\t' => '\t',
            b'n' => '\n',
            b'v' => '\u{b}',
            b'f' => '\u{c}',
            b'r' => '\r',
            b'e' => '\u{1b}',
            b' ' => ' ',
            b'"' => '"',
            b'/' => '/',
            b'\\' => '\\',
            b'N' => '\u{85}',
            b'_' => '\u{a0}',
            b'L' => '\u{2028}',
            b'P' => '\u{2029}',
            b'x' => return self.hex_escape(2),
            b'u' => return self.hex_escape(4),
            b'U' => return self.hex_escape(8),
            _ => return Err(GiveUp),
        };
        Ok((simple, 2))
    }

    fn hex_escape(&self, digits: usize) -> Scan<(char, usize)> {
        let hex = self
            .text
            .get(self.i + 2..self.i + 2 + digits)
            .ok_or(GiveUp)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(GiveUp);
        }
        let code = u32::from_str_radix(hex, 16).map_err(|_| GiveUp)?;
        Ok((char::from_u32(code).ok_or(GiveUp)?, 2 + digits))
    }

    /// A literal (`|`) or folded (`>`) block scalar whose indicator is at `i`.
    fn block_scalar(&mut self, parent: Parent) -> Scan<Next> {
        let parent_indent = parent.indent().ok_or(GiveUp)?;
        let literal = self.peek() == b'|';
        self.i += 1;
        let chomp = match self.peek() {
            b'-' => Chomp::Strip,
            b'+' => Chomp::Keep,
            _ => Chomp::Clip,
        };
        if !matches!(chomp, Chomp::Clip) {
            self.i += 1;
        }
        self.end_of_line()?;
        if self.peek() != b'\n' {
            return Err(GiveUp);
        }
        self.newline();
        // the first line sets the indentation; it must have content (leading empty lines
        // are left to granit-parser)
        let indent = self.indentation();
        if indent <= parent_indent || matches!(self.at(self.i + indent), b'\n' | b'\t' | 0) {
            return Err(GiveUp);
        }
        let pos = self.pos_at(indent);
        let mut text = String::new();
        // line breaks after the last content line so far
        let mut breaks = 0usize;
        let mut first = true;
        loop {
            let spaces = self.indentation();
            let c = self.at(self.i + spaces);
            if matches!(c, b'\n' | 0) {
                if spaces > indent {
                    return Err(GiveUp);
                }
                if c == 0 {
                    break;
                }
                breaks += 1;
                self.i += spaces;
                self.newline();
                continue;
            }
            if spaces < indent {
                break;
            }
            let content = self.i + indent;
            if !literal && matches!(self.at(content), b' ' | b'\t') {
                return Err(GiveUp);
            }
            self.i = content;
            self.skip_to_line_end();
            if self.peek() == 0 {
                // no line break after the last line
                return Err(GiveUp);
            }
            if !first {
                if literal || breaks > 0 {
                    text.extend(std::iter::repeat_n('\n', breaks + usize::from(literal)));
                } else {
                    text.push(' ');
                }
            }
            text.push_str(&self.text[content..self.i]);
            first = false;
            breaks = 0;
            self.newline();
        }
        match chomp {
            Chomp::Strip => {}
            Chomp::Clip => text.push('\n'),
            Chomp::Keep => text.extend(std::iter::repeat_n('\n', breaks + 1)),
        }
        let style = if literal {
            ScalarStyle::Literal
        } else {
            ScalarStyle::Folded
        };
        self.push(scalar(Cow::Owned(text), style), pos)?;
        self.next_content()
    }

    /// A flow collection on one line, at `i`; `i` is left after its end.
    fn flow(&mut self) -> Scan<()> {
        self.enter()?;
        let (map, close) = if self.peek() == b'{' {
            (true, b'}')
        } else {
            (false, b']')
        };
        let start = self.pos();
        self.push(
            if map {
                Ev::MapStart { tag: None }
            } else {
                Ev::SeqStart { tag: None }
            },
            start,
        )?;
        self.i += 1;
        self.spaces()?;
        if self.peek() != close {
            loop {
                if map {
                    if matches!(self.peek(), b'[' | b'{') {
                        return Err(GiveUp);
                    }
                    self.flow_item(true)?;
                    self.spaces()?;
                    if self.peek() != b':' || self.at(self.i + 1) != b' ' {
                        return Err(GiveUp);
                    }
                    self.i += 1;
                    self.spaces()?;
                }
                self.flow_item(false)?;
                self.spaces()?;
                match self.peek() {
                    b',' => {
                        self.i += 1;
                        self.spaces()?;
                        if self.peek() == close {
                            return Err(GiveUp);
                        }
                    }
                    c if c == close => break,
                    _ => return Err(GiveUp),
                }
            }
        }
        let end = self.pos();
        self.push(if map { Ev::MapEnd } else { Ev::SeqEnd }, end)?;
        self.i += 1;
        self.depth -= 1;
        Ok(())
    }

    /// A node inside a flow collection; `key`: a key of a flow mapping.
    fn flow_item(&mut self, key: bool) -> Scan<()> {
        let pos = self.pos();
        match self.peek() {
            b'[' | b'{' => self.flow(),
            b'\'' | b'"' => self.quoted_scalar(None),
            first => {
                // a `:` first is left to granit-parser in flow collections
                if first == b':' || !plain_can_start(first, self.at(self.i + 1)) {
                    return Err(GiveUp);
                }
                let (mut j, mut end) = (self.i, self.i);
                loop {
                    match self.at(j) {
                        b',' | b'[' | b']' | b'{' | b'}' => break,
                        b' ' => j += 1,
                        b':' => match self.at(j + 1) {
                            b' ' if key => break,
                            b' ' | b'\t' | b'\n' | 0 | b',' | b'[' | b']' | b'{' | b'}' => {
                                return Err(GiveUp);
                            }
                            _ => {
                                j += 1;
                                end = j;
                            }
                        },
                        b'\n' | b'\t' | 0 => return Err(GiveUp),
                        b'#' if self.at(j - 1) == b' ' => return Err(GiveUp),
                        _ => {
                            j += 1;
                            end = j;
                        }
                    }
                }
                self.push(plain_text(&self.text[self.i..end]), pos)?;
                self.i = end;
                Ok(())
            }
        }
    }
}
