//! Field paths into a document (`spec.steps.train.resources.gpu`, `spec.containers[0].name`).
//!
//! Paths are how diagnostics name the field they are about, independently of where the field
//! sits in the source text; [`crate::yaml::Node::locate`] maps a path back to a line and column.

use std::fmt;

/// One step of a [`FieldPath`]: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A key of a mapping.
    Key(String),
    /// A zero-based index into a sequence.
    Index(usize),
}

/// A path from a document's root to one of its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(Vec<Segment>);

impl FieldPath {
    /// The empty path: the document itself.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// Parses a dotted path such as `spec.steps.train` or `spec.containers[0].name`.
    ///
    /// Keys that contain dots or brackets cannot be written this way; build those with
    /// [`FieldPath::key`].
    pub fn parse(text: &str) -> Self {
        let mut path = Self::root();
        let mut chars = text.chars().peekable();
        let mut key = String::new();
        while let Some(c) = chars.next() {
            match c {
                '.' => {
                    if !key.is_empty() {
                        path.0.push(Segment::Key(std::mem::take(&mut key)));
                    }
                }
                '[' => {
                    if !key.is_empty() {
                        path.0.push(Segment::Key(std::mem::take(&mut key)));
                    }
                    let mut inner = String::new();
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        while let Some(c) = chars.next() {
                            match c {
                                '\\' => inner.extend(chars.next()),
                                '"' => break,
                                _ => inner.push(c),
                            }
                        }
                        chars.next_if_eq(&']');
                        path.0.push(Segment::Key(inner));
                    } else {
                        for c in chars.by_ref() {
                            if c == ']' {
                                break;
                            }
                            inner.push(c);
                        }
                        path.0.push(match inner.parse::<usize>() {
                            Ok(i) => Segment::Index(i),
                            Err(_) => Segment::Key(inner),
                        });
                    }
                }
                _ => key.push(c),
            }
        }
        if !key.is_empty() {
            path.0.push(Segment::Key(key));
        }
        path
    }

    /// This path extended by a mapping key.
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Key(key.into()));
        next
    }

    /// This path extended by a sequence index.
    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }

    /// Appends a key in place.
    pub fn push_key(&mut self, key: impl Into<String>) {
        self.0.push(Segment::Key(key.into()));
    }

    /// Appends an index in place.
    pub fn push_index(&mut self, index: usize) {
        self.0.push(Segment::Index(index));
    }

    /// Removes the last segment.
    pub fn pop(&mut self) -> Option<Segment> {
        self.0.pop()
    }

    /// The segments, root first.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// Whether this is the root path.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Builds a path from a JSON pointer (`/spec/template/spec/containers/0/name`), as JSON
    /// Schema validators report instance locations. Numeric tokens become indexes.
    pub fn from_json_pointer(pointer: &str) -> Self {
        let mut path = Self::root();
        for token in pointer.split('/').skip(1) {
            let token = token.replace("~1", "/").replace("~0", "~");
            match token.parse::<usize>() {
                Ok(i) => path.0.push(Segment::Index(i)),
                Err(_) => path.0.push(Segment::Key(token)),
            }
        }
        path
    }
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if is_plain_key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Segment::Key(k) => write!(f, "[{k:?}]")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        for text in [
            "spec.steps.train.resources.gpu",
            "spec.containers[0].name",
            "spec.template.spec.containers[1].ports[0]",
        ] {
            assert_eq!(FieldPath::parse(text).to_string(), text);
        }
    }

    #[test]
    fn keys_with_dots_are_quoted() {
        let p = FieldPath::root()
            .key("metadata")
            .key("annotations")
            .key("a.b/c");
        assert_eq!(p.to_string(), "metadata.annotations[\"a.b/c\"]");
        assert_eq!(FieldPath::parse(&p.to_string()), p);
    }

    #[test]
    fn json_pointer() {
        let p = FieldPath::from_json_pointer("/spec/containers/0/resources/limits/nvidia.com~1gpu");
        assert_eq!(
            p.to_string(),
            "spec.containers[0].resources.limits[\"nvidia.com/gpu\"]"
        );
    }
}
