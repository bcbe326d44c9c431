//! Builds located trees from the event stream of [`super::events`]: one frame per open
//! mapping or sequence, scalars resolved as they arrive, duplicate keys and merge keys (`<<`)
//! handled as the mapping is read.
//!
//! Positions follow the rules mlctl has always reported: a node is where its event is, unless
//! it is the copy of an anchored node (then it is where the alias is) or was merged into a
//! mapping by `<<` (then it is where the merged value is, or its alias). An error inside a
//! value or list item that an alias copied is reported at the alias.

use std::collections::HashSet;
use std::rc::Rc;

use serde_saphyr::granit_parser::ScalarStyle;

use super::events::{Ev, Item, Origin, syntax};
use super::resolve::{self, Fingerprint, ScalarError, TagInfo, TagKind};
use super::{Entry, Node, Pos, SyntaxError, Value};

const RECURSIVE: &str = "an alias cannot refer to a node that contains it";
const NOT_A_MAPPING: &str = "YAML merge value must be mapping or sequence of mappings";
const KEY_NOT_SCALAR: &str = "expected string scalar";
/// An end event where a node should start: granit-parser never emits one, but the builder
/// does not rely on that.
const UNEXPECTED_END: &str = "unexpected end of collection";

/// A mapping key's identity (see [`Fingerprint`]), cheap for the common case of a text key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyId {
    /// `Fingerprint::Scalar(Str, key)`, where `key` is the entry's key.
    Text,
    Int(bool, u128),
    Other(Box<Fingerprint>),
}

impl KeyId {
    fn of_scalar(text: &str, style: ScalarStyle, tag: Option<&Rc<TagInfo>>) -> KeyId {
        if tag.is_none() {
            if style != ScalarStyle::Plain {
                return KeyId::Text;
            }
            let maybe_int = matches!(
                text.trim_start_matches([' ', '\t', '\r', '\n'])
                    .as_bytes()
                    .first(),
                Some(b'0'..=b'9' | b'+' | b'-')
            );
            if !maybe_int && !resolve::is_null(TagKind::None, text, style) {
                return KeyId::Text;
            }
        }
        KeyId::of(resolve::scalar_fingerprint(text, style, tag.map(|t| &**t)))
    }

    fn of(fp: Fingerprint) -> KeyId {
        match fp {
            Fingerprint::Int {
                negative,
                magnitude,
            } => KeyId::Int(negative, magnitude),
            Fingerprint::Scalar(resolve::CanonicalTag::Kind(TagKind::Str), _) => KeyId::Text,
            fp => KeyId::Other(Box::new(fp)),
        }
    }

    fn fingerprint(&self, key: &str) -> Fingerprint {
        match self {
            KeyId::Text => {
                Fingerprint::Scalar(resolve::CanonicalTag::Kind(TagKind::Str), key.to_owned())
            }
            KeyId::Int(negative, magnitude) => Fingerprint::Int {
                negative: *negative,
                magnitude: *magnitude,
            },
            KeyId::Other(fp) => (**fp).clone(),
        }
    }
}

/// The entries of the open mappings and the items of the open sequences, innermost last, on
/// stacks shared by all frames: a complete collection moves its own into a vector of exactly
/// its size (no growing vector per mapping, no unused capacity kept in the tree).
#[derive(Default)]
struct Stacks {
    entries: Vec<Entry>,
    /// The identity of each key of `entries`, parallel to it.
    ids: Vec<KeyId>,
    items: Vec<Node>,
}

/// The keys of a mapping so far: its entries and their ids are `stacks.entries[start..]` and
/// `stacks.ids[start..]`.
struct Keys {
    start: usize,
    /// For large mappings: every fingerprint, so that lookups stay cheap.
    index: Option<HashSet<Fingerprint>>,
}

/// A mapping this large is searched through a hash set.
const INDEX_FROM: usize = 32;

impl Keys {
    fn contains(&self, stacks: &Stacks, id: &KeyId, text: &str) -> bool {
        if let Some(index) = &self.index {
            return index.contains(&id.fingerprint(text));
        }
        let ids = &stacks.ids[self.start..];
        match id {
            KeyId::Text => ids
                .iter()
                .zip(&stacks.entries[self.start..])
                .any(|(i, e)| *i == KeyId::Text && e.key == text),
            _ => ids.contains(id),
        }
    }

    /// Adds an entry to the mapping.
    fn push(&mut self, stacks: &mut Stacks, entry: Entry, id: KeyId) {
        if let Some(index) = &mut self.index {
            index.insert(id.fingerprint(&entry.key));
        } else if stacks.ids.len() - self.start + 1 >= INDEX_FROM {
            let mut index: HashSet<Fingerprint> = stacks.ids[self.start..]
                .iter()
                .zip(&stacks.entries[self.start..])
                .map(|(i, e)| i.fingerprint(&e.key))
                .collect();
            index.insert(id.fingerprint(&entry.key));
            self.index = Some(index);
        }
        stacks.entries.push(entry);
        stacks.ids.push(id);
    }
}

/// A key/value pair that a merge key brings into a mapping, as events.
struct Pending<'a> {
    fingerprint: Fingerprint,
    key: Vec<Item<'a>>,
    value: Vec<Item<'a>>,
}

enum MapState {
    Key,
    Value {
        key: String,
        key_pos: Pos,
        id: KeyId,
    },
    /// After `<<:`.
    Merge,
}

struct MapFrame<'a> {
    pos: Pos,
    keys: Keys,
    state: MapState,
    /// Entries of merged mappings, added after the mapping's own keys.
    merged: Vec<Pending<'a>>,
}

enum Purpose {
    /// A sequence or mapping used as a key: an error once read.
    ComplexKey { pos: Pos },
    /// A mapping merged by `<<`.
    MergeMap { at: Pos },
    /// An item of a list of mappings merged by `<<`.
    MergeItem { at: Pos },
}

enum Frame<'a> {
    /// A sequence whose items so far are `stacks.items[start..]`.
    Seq {
        pos: Pos,
        start: usize,
    },
    Map(MapFrame<'a>),
    /// The list of mappings after `<<:`.
    MergeSeq {
        entries: Vec<Pending<'a>>,
    },
    /// A node kept as events until it is complete.
    Capture {
        items: Vec<Item<'a>>,
        depth: usize,
        purpose: Purpose,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Root,
    Value,
    Item,
}

/// Builds trees from events, one root node at a time.
pub(super) struct Builder<'a> {
    frames: Vec<Frame<'a>>,
    stacks: Stacks,
    /// The alias whose copy fills the value or item being built, and the number of frames
    /// below that copy: errors inside it are reported at the alias.
    alias_slot: Option<(Pos, usize)>,
    /// Whether the root is a mapping value (when building a merged entry's value).
    root_is_value: bool,
}

/// The number of events of the node that starts at `items[start]`.
fn node_len(items: &[Item<'_>], start: usize) -> usize {
    let mut depth = 0usize;
    for (i, item) in items[start..].iter().enumerate() {
        match item.ev {
            Ev::SeqStart { .. } | Ev::MapStart { .. } => depth += 1,
            Ev::SeqEnd | Ev::MapEnd => depth = depth.saturating_sub(1),
            Ev::Scalar { .. } | Ev::Recursive { .. } => {}
        }
        if depth == 0 {
            return i + 1;
        }
    }
    items.len() - start
}

/// The fingerprint of the key node `items`.
fn fingerprint(items: &[Item<'_>]) -> Fingerprint {
    let Some(first) = items.first() else {
        return Fingerprint::Recursive(0);
    };
    let children = |mut i: usize| {
        let mut out = Vec::new();
        while i + 1 < items.len() {
            let n = node_len(items, i);
            out.push(fingerprint(&items[i..i + n]));
            i += n;
        }
        out
    };
    match &first.ev {
        Ev::Scalar { text, style, tag } => {
            resolve::scalar_fingerprint(text, *style, tag.as_deref())
        }
        Ev::Recursive { anchor } => Fingerprint::Recursive(*anchor),
        Ev::SeqStart { tag } => Fingerprint::Seq(
            resolve::canonical_tag(tag.as_deref(), Ev::tag_kind(tag.as_ref()), TagKind::Seq),
            children(1),
        ),
        Ev::MapStart { tag } => {
            let mut flat = children(1).into_iter();
            let mut pairs = Vec::new();
            while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                pairs.push((k, v));
            }
            pairs.sort();
            Fingerprint::Map(
                resolve::canonical_tag(tag.as_deref(), Ev::tag_kind(tag.as_ref()), TagKind::Map),
                pairs,
            )
        }
        Ev::SeqEnd | Ev::MapEnd => Fingerprint::Recursive(0),
    }
}

/// The events `items` as a merge (`<<`) at `at` sees them: copies keep their alias, everything
/// else is placed at `at`.
fn merged_at<'a>(items: &[Item<'a>], at: Pos) -> Vec<Item<'a>> {
    items
        .iter()
        .map(|i| Item {
            ev: i.ev.clone(),
            pos: i.pos,
            origin: match i.origin {
                Origin::Alias(s) => Origin::Alias(s),
                Origin::Direct | Origin::Merge(_) => Origin::Merge(at),
            },
        })
        .collect()
}

/// Where a merge at `at` reports the node starting with `item`.
fn merge_pos(item: &Item<'_>, at: Pos) -> Pos {
    match item.origin {
        Origin::Alias(s) => s,
        Origin::Direct | Origin::Merge(_) => at,
    }
}

/// The text of a key node for a duplicate-key message, if it is a text scalar.
fn key_text<'s>(items: &'s [Item<'_>]) -> Option<&'s str> {
    match items {
        [
            Item {
                ev: Ev::Scalar { text, tag, .. },
                ..
            },
        ] if Ev::tag_kind(tag.as_ref()).can_be_text() => Some(text),
        _ => None,
    }
}

impl<'a> Builder<'a> {
    /// A builder with no node started.
    pub(super) fn new() -> Self {
        Builder {
            frames: Vec::new(),
            stacks: Stacks::default(),
            alias_slot: None,
            root_is_value: false,
        }
    }

    /// Whether no node is being built.
    pub(super) fn idle(&self) -> bool {
        self.frames.is_empty()
    }

    /// Where an error at `pos` is reported: at the alias, inside a value that an alias copied.
    fn located(&self, pos: Pos) -> Pos {
        self.alias_slot.map_or(pos, |(site, _)| site)
    }

    fn error(&self, pos: Pos, message: impl Into<String>) -> SyntaxError {
        syntax(self.located(pos), message)
    }

    fn scalar_error(&self, pos: Pos, e: ScalarError) -> SyntaxError {
        self.error(pos, e.message())
    }

    fn duplicate(&self, pos: Pos, key: Option<&str>) -> SyntaxError {
        SyntaxError {
            code: "duplicate-key",
            pos: self.located(pos),
            message: match key {
                Some(k) => format!("duplicate key `{k}`: each key may appear once in a mapping"),
                None => "duplicate key: each key may appear once in a mapping".to_string(),
            },
        }
    }

    /// Takes the next event; returns the root node once it is complete.
    pub(super) fn feed(&mut self, item: Item<'a>) -> Result<Option<Node>, SyntaxError> {
        match self.frames.last_mut() {
            Some(Frame::Capture { items, depth, .. }) => {
                match item.ev {
                    Ev::SeqStart { .. } | Ev::MapStart { .. } => *depth += 1,
                    Ev::SeqEnd | Ev::MapEnd => *depth = depth.saturating_sub(1),
                    Ev::Scalar { .. } | Ev::Recursive { .. } => {}
                }
                items.push(item);
                if *depth == 0
                    && let Some(Frame::Capture { items, purpose, .. }) = self.frames.pop()
                {
                    self.captured(items, purpose)?;
                }
                Ok(None)
            }
            None => self.start(item, Slot::Root),
            Some(Frame::Seq { .. }) => match item.ev {
                Ev::SeqEnd => match self.frames.pop() {
                    Some(Frame::Seq { pos, start }) => {
                        let items = self.stacks.items.drain(start..).collect();
                        Ok(self.complete(Node {
                            pos,
                            value: Value::Seq(items),
                        }))
                    }
                    _ => Err(self.error(item.pos, "unexpected end of sequence")),
                },
                _ => self.start(item, Slot::Item),
            },
            Some(Frame::Map(map)) => match map.state {
                MapState::Key => match item.ev {
                    Ev::MapEnd => self.end_map(),
                    _ => self.key(item),
                },
                MapState::Value { .. } => self.start(item, Slot::Value),
                MapState::Merge => self.merge_value(item),
            },
            Some(Frame::MergeSeq { .. }) => match item.ev {
                Ev::SeqEnd => {
                    if let Some(Frame::MergeSeq { entries }) = self.frames.pop()
                        && let Some(Frame::Map(map)) = self.frames.last_mut()
                    {
                        map.merged.extend(entries);
                        map.state = MapState::Key;
                    }
                    Ok(None)
                }
                _ => self.merge_item(item),
            },
        }
    }

    /// A node starts in `slot`.
    fn start(&mut self, item: Item<'a>, slot: Slot) -> Result<Option<Node>, SyntaxError> {
        let at = item.at();
        let is_value = slot != Slot::Root || self.root_is_value;
        if is_value
            && self.alias_slot.is_none()
            && let Origin::Alias(site) = item.origin
            && !matches!(item.ev, Ev::Recursive { .. })
        {
            self.alias_slot = Some((site, self.frames.len()));
        }
        match item.ev {
            Ev::Scalar { text, style, tag } => {
                match resolve::value(text, style, Ev::tag_kind(tag.as_ref())) {
                    Ok(value) => Ok(self.complete(Node { pos: at, value })),
                    Err(e) => Err(self.scalar_error(item.pos, e)),
                }
            }
            Ev::Recursive { .. } => Err(self.error(item.pos, RECURSIVE)),
            Ev::SeqStart { .. } => {
                self.frames.push(Frame::Seq {
                    pos: at,
                    start: self.stacks.items.len(),
                });
                Ok(None)
            }
            Ev::MapStart { .. } => {
                self.frames.push(Frame::Map(MapFrame {
                    pos: at,
                    keys: Keys {
                        start: self.stacks.entries.len(),
                        index: None,
                    },
                    state: MapState::Key,
                    merged: Vec::new(),
                }));
                Ok(None)
            }
            Ev::SeqEnd | Ev::MapEnd => Err(self.error(item.pos, UNEXPECTED_END)),
        }
    }

    /// A node is complete: it goes into its parent, or is the root.
    fn complete(&mut self, node: Node) -> Option<Node> {
        if self
            .alias_slot
            .is_some_and(|(_, depth)| depth == self.frames.len())
        {
            self.alias_slot = None;
        }
        match self.frames.last_mut() {
            None => Some(node),
            Some(Frame::Seq { .. }) => {
                self.stacks.items.push(node);
                None
            }
            Some(Frame::Map(map)) => {
                if let MapState::Value { key, key_pos, id } =
                    std::mem::replace(&mut map.state, MapState::Key)
                {
                    let entry = Entry {
                        key,
                        key_pos,
                        value: node,
                    };
                    map.keys.push(&mut self.stacks, entry, id);
                }
                None
            }
            Some(Frame::MergeSeq { .. } | Frame::Capture { .. }) => None,
        }
    }

    fn map(&mut self) -> Option<&mut MapFrame<'a>> {
        match self.frames.last_mut() {
            Some(Frame::Map(map)) => Some(map),
            _ => None,
        }
    }

    /// A key of the mapping on top.
    fn key(&mut self, item: Item<'a>) -> Result<Option<Node>, SyntaxError> {
        let key_pos = item.at();
        match item.ev {
            Ev::Scalar { text, style, tag } => {
                let kind = Ev::tag_kind(tag.as_ref());
                if resolve::is_merge_key(&text, style, kind) {
                    if let Some(map) = self.map() {
                        map.state = MapState::Merge;
                    }
                    return Ok(None);
                }
                let id = KeyId::of_scalar(&text, style, tag.as_ref());
                let duplicate_of = match self.frames.last() {
                    Some(Frame::Map(map)) => map.keys.contains(&self.stacks, &id, &text),
                    _ => false,
                };
                if duplicate_of {
                    return Err(self.duplicate(item.pos, kind.can_be_text().then_some(&*text)));
                }
                let key =
                    resolve::key(text, style, kind).map_err(|e| self.scalar_error(item.pos, e))?;
                if let Some(map) = self.map() {
                    map.state = MapState::Value { key, key_pos, id };
                }
                Ok(None)
            }
            Ev::Recursive { .. } => Err(self.error(item.pos, RECURSIVE)),
            Ev::SeqStart { .. } | Ev::MapStart { .. } => {
                let pos = item.pos;
                self.capture(item, Purpose::ComplexKey { pos });
                Ok(None)
            }
            Ev::SeqEnd | Ev::MapEnd => Err(self.error(item.pos, UNEXPECTED_END)),
        }
    }

    /// The value of a merge key (`<<:`) in the mapping on top.
    fn merge_value(&mut self, item: Item<'a>) -> Result<Option<Node>, SyntaxError> {
        match &item.ev {
            Ev::Scalar { text, style, tag }
                if resolve::is_null(Ev::tag_kind(tag.as_ref()), text, *style) =>
            {
                if let Some(map) = self.map() {
                    map.state = MapState::Key;
                }
            }
            Ev::Recursive { .. } => return Err(self.error(item.pos, RECURSIVE)),
            Ev::Scalar { .. } => return Err(self.error(item.pos, NOT_A_MAPPING)),
            Ev::MapStart { .. } => {
                let at = item.at();
                self.capture(item, Purpose::MergeMap { at });
            }
            Ev::SeqStart { .. } => self.frames.push(Frame::MergeSeq {
                entries: Vec::new(),
            }),
            Ev::SeqEnd | Ev::MapEnd => {
                return Err(self.error(item.pos, UNEXPECTED_END));
            }
        }
        Ok(None)
    }

    /// An item of the list after `<<:`.
    fn merge_item(&mut self, item: Item<'a>) -> Result<Option<Node>, SyntaxError> {
        match &item.ev {
            Ev::Recursive { .. } => Err(self.error(item.pos, RECURSIVE)),
            Ev::Scalar { .. } => {
                let at = item.at();
                let entries = self.entries(&[item], at)?;
                if let Some(Frame::MergeSeq { entries: all }) = self.frames.last_mut() {
                    all.extend(entries);
                }
                Ok(None)
            }
            Ev::SeqStart { .. } | Ev::MapStart { .. } => {
                let at = item.at();
                self.capture(item, Purpose::MergeItem { at });
                Ok(None)
            }
            Ev::SeqEnd | Ev::MapEnd => Err(self.error(item.pos, UNEXPECTED_END)),
        }
    }

    /// Keeps the events of the collection that `item` starts until it is complete.
    fn capture(&mut self, item: Item<'a>, purpose: Purpose) {
        self.frames.push(Frame::Capture {
            items: vec![item],
            depth: 1,
            purpose,
        });
    }

    /// A captured node is complete.
    fn captured(&mut self, items: Vec<Item<'a>>, purpose: Purpose) -> Result<(), SyntaxError> {
        match purpose {
            Purpose::ComplexKey { pos } => Err(self.error(pos, KEY_NOT_SCALAR)),
            Purpose::MergeMap { at } => {
                let entries = self.entries(&items, at)?;
                if let Some(map) = self.map() {
                    map.merged.extend(entries);
                    map.state = MapState::Key;
                }
                Ok(())
            }
            Purpose::MergeItem { at } => {
                let entries = self.entries(&items, at)?;
                if let Some(Frame::MergeSeq { entries: all }) = self.frames.last_mut() {
                    all.extend(entries);
                }
                Ok(())
            }
        }
    }

    /// The entries that the merge value `items`, merged at `at`, brings: a mapping's, or those
    /// of each mapping of a list (lists nest), none for null.
    fn entries(&self, items: &[Item<'a>], at: Pos) -> Result<Vec<Pending<'a>>, SyntaxError> {
        let Some(first) = items.first() else {
            return Ok(Vec::new());
        };
        match &first.ev {
            Ev::Scalar { text, style, tag }
                if resolve::is_null(Ev::tag_kind(tag.as_ref()), text, *style) =>
            {
                Ok(Vec::new())
            }
            Ev::Recursive { .. } => Err(self.error(first.pos, RECURSIVE)),
            Ev::Scalar { .. } | Ev::SeqEnd | Ev::MapEnd => {
                Err(self.error(first.pos, NOT_A_MAPPING))
            }
            Ev::MapStart { .. } => self.map_entries(items, at),
            Ev::SeqStart { .. } => {
                let mut out = Vec::new();
                let mut i = 1;
                while i + 1 < items.len() {
                    let n = node_len(items, i);
                    let element = &items[i..i + n];
                    out.extend(self.entries(&merged_at(element, at), merge_pos(&element[0], at))?);
                    i += n;
                }
                Ok(out)
            }
        }
    }

    /// The entries of the merged mapping `items`: its own keys (no duplicates among them),
    /// then those it merges itself.
    fn map_entries(&self, items: &[Item<'a>], at: Pos) -> Result<Vec<Pending<'a>>, SyntaxError> {
        let mut own: Vec<Pending<'a>> = Vec::new();
        let mut merges = Vec::new();
        let mut i = 1;
        while i + 1 < items.len() {
            let k = node_len(items, i);
            let key = &items[i..i + k];
            let v = node_len(items, i + k);
            let value = &items[i + k..i + k + v];
            i += k + v;
            let merge_key = match key {
                [
                    Item {
                        ev: Ev::Scalar { text, style, tag },
                        ..
                    },
                ] => resolve::is_merge_key(text, *style, Ev::tag_kind(tag.as_ref())),
                _ => false,
            };
            if merge_key {
                let Some(first) = value.first() else { continue };
                let value_at = merge_pos(first, at);
                merges.push(self.merge_value_entries(value, at, value_at)?);
            } else {
                own.push(Pending {
                    fingerprint: fingerprint(key),
                    key: merged_at(key, at),
                    value: merged_at(value, at),
                });
            }
        }
        let mut seen = HashSet::new();
        for p in &own {
            if !seen.insert(&p.fingerprint) {
                let pos = p.key.first().map_or(at, |k| k.pos);
                return Err(self.duplicate(pos, key_text(&p.key)));
            }
        }
        own.extend(merges.into_iter().flatten());
        Ok(own)
    }

    /// The entries of the value of a `<<` inside a merged mapping at `at`; `value_at` is where
    /// that value is.
    fn merge_value_entries(
        &self,
        value: &[Item<'a>],
        at: Pos,
        value_at: Pos,
    ) -> Result<Vec<Pending<'a>>, SyntaxError> {
        let Some(first) = value.first() else {
            return Ok(Vec::new());
        };
        match &first.ev {
            // the items of a list are each placed at the merge, as `entries` does
            Ev::SeqStart { .. } => self.entries(value, at),
            Ev::MapStart { .. } => self.entries(&merged_at(value, at), value_at),
            _ => self.entries(value, value_at),
        }
    }

    /// The end of the mapping on top: merged entries whose keys it does not have are added.
    fn end_map(&mut self) -> Result<Option<Node>, SyntaxError> {
        let Some(Frame::Map(mut map)) = self.frames.pop() else {
            return Ok(None);
        };
        let merged = std::mem::take(&mut map.merged);
        for p in merged {
            let id = KeyId::of(p.fingerprint.clone());
            let text = match &p.fingerprint {
                Fingerprint::Scalar(_, t) => t.as_str(),
                _ => "",
            };
            if map.keys.contains(&self.stacks, &id, text) {
                continue;
            }
            let Some(first) = p.key.first() else { continue };
            let key = match &first.ev {
                Ev::Scalar { text, style, tag } => {
                    resolve::key(text.clone(), *style, Ev::tag_kind(tag.as_ref()))
                        .map_err(|e| self.scalar_error(first.pos, e))?
                }
                Ev::Recursive { .. } => return Err(self.error(first.pos, RECURSIVE)),
                _ => return Err(self.error(first.pos, KEY_NOT_SCALAR)),
            };
            let key_pos = first.at();
            let value = self.build_value(p.value)?;
            let entry = Entry {
                key,
                key_pos,
                value,
            };
            map.keys.push(&mut self.stacks, entry, id);
        }
        let start = map.keys.start;
        self.stacks.ids.truncate(start);
        let entries = self.stacks.entries.drain(start..).collect();
        Ok(self.complete(Node {
            pos: map.pos,
            value: Value::Map(entries),
        }))
    }

    /// Builds a merged entry's value from its events.
    fn build_value(&self, items: Vec<Item<'a>>) -> Result<Node, SyntaxError> {
        let mut b = Builder {
            frames: Vec::new(),
            stacks: Stacks::default(),
            alias_slot: self.alias_slot.map(|(site, _)| (site, usize::MAX)),
            root_is_value: true,
        };
        let at = items.first().map_or(Pos::default(), Item::at);
        for item in items {
            if let Some(node) = b.feed(item)? {
                return Ok(node);
            }
        }
        Err(self.error(at, "incomplete merged value"))
    }
}
