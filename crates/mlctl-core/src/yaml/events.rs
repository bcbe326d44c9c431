//! The events a tree is built from: granit-parser's events without the stream and document
//! markers, with anchored nodes recorded and each alias replaced by a replay of its anchored
//! node, marked with where the alias is.
//!
//! Budgets are enforced here, so that no input can make the loader run out of stack or memory:
//! nesting depth (also the loader's recursion depth elsewhere: `to_json`, `Drop`), and the
//! number of events that anchors and aliases copy (a "billion laughs" document expands ten
//! aliases of ten aliases of ... into billions of nodes).

use std::borrow::Cow;
use std::rc::Rc;

use serde_saphyr::granit_parser::{
    ErrorKind, Event, Marker, Options, Parser, ScalarStyle, ScanError, StrInput,
};

use super::resolve::{NodeKind, TagInfo, TagKind};
use super::{Pos, SyntaxError};

/// Deepest nesting of mappings and sequences accepted.
pub(super) const MAX_DEPTH: usize = 64;

/// Most events that aliases may replay, and that anchors may copy, in one YAML stream.
pub(super) const MAX_ALIAS_EVENTS: usize = 1_000_000;

/// Most bytes of scalar text (not borrowed from the input) that anchors may copy.
pub(super) const MAX_ALIAS_BYTES: usize = 64 * 1024 * 1024;

/// A node event.
#[derive(Clone, Debug)]
pub(super) enum Ev<'a> {
    Scalar {
        text: Cow<'a, str>,
        style: ScalarStyle,
        tag: Option<Rc<TagInfo>>,
    },
    SeqStart {
        tag: Option<Rc<TagInfo>>,
    },
    SeqEnd,
    MapStart {
        tag: Option<Rc<TagInfo>>,
    },
    MapEnd,
    /// An alias to a node that is not complete yet (`&a [*a]`).
    Recursive {
        anchor: usize,
    },
}

impl Ev<'_> {
    /// The kind of the explicit tag, if any.
    pub(super) fn tag_kind(tag: Option<&Rc<TagInfo>>) -> TagKind {
        tag.map_or(TagKind::None, |t| t.kind)
    }

    fn owned_bytes(&self) -> usize {
        let tag_bytes = |tag: &Option<Rc<TagInfo>>| tag.as_ref().map_or(0, |t| t.resolved.len());
        match self {
            Ev::Scalar { text, tag, .. } => {
                let text_bytes = match text {
                    Cow::Borrowed(_) => 0,
                    Cow::Owned(s) => s.len(),
                };
                text_bytes + tag_bytes(tag)
            }
            Ev::SeqStart { tag } | Ev::MapStart { tag } => tag_bytes(tag),
            Ev::SeqEnd | Ev::MapEnd | Ev::Recursive { .. } => 0,
        }
    }
}

/// Where a node's position comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    /// The node is where its event is.
    Direct,
    /// The node is a copy made by the alias at this position.
    Alias(Pos),
    /// The node was merged into a mapping (`<<`) by the value at this position.
    Merge(Pos),
}

/// An event, where it is in the text, and where the node it starts is reported.
#[derive(Clone, Debug)]
pub(super) struct Item<'a> {
    pub(super) ev: Ev<'a>,
    /// Where the event is in the text (for an alias's copy: in the anchored node).
    pub(super) pos: Pos,
    pub(super) origin: Origin,
}

impl Item<'_> {
    /// The position reported for the node this event starts: the alias or merge that put it
    /// there, or the event itself.
    pub(super) fn at(&self) -> Pos {
        match self.origin {
            Origin::Direct => self.pos,
            Origin::Alias(p) | Origin::Merge(p) => p,
        }
    }
}

/// The events of a complete anchored node, where each is in the text.
type Anchored<'a> = Rc<[(Ev<'a>, Pos)]>;

/// An anchored node being recorded until its end.
struct Recording<'a> {
    anchor: usize,
    depth: usize,
    events: Vec<(Ev<'a>, Pos)>,
}

/// An alias being replayed.
struct Replay<'a> {
    events: Anchored<'a>,
    next: usize,
    site: Pos,
}

/// The event stream of one YAML text.
pub(super) struct Events<'a> {
    parser: Parser<'a, StrInput<'a>>,
    /// Complete anchored nodes of the current document, by anchor id.
    anchors: Vec<Option<Anchored<'a>>>,
    recordings: Vec<Recording<'a>>,
    replay: Option<Replay<'a>>,
    depth: usize,
    replayed: usize,
    copied: usize,
    copied_bytes: usize,
}

/// A `yaml-syntax` error at `pos`.
pub(super) fn syntax(pos: Pos, message: impl Into<String>) -> SyntaxError {
    SyntaxError {
        code: "yaml-syntax",
        pos,
        message: message.into(),
    }
}

fn alias_bomb(pos: Pos) -> SyntaxError {
    syntax(
        pos,
        format!(
            "anchors and aliases expand to more than {MAX_ALIAS_EVENTS} YAML events (or \
             {MAX_ALIAS_BYTES} bytes of copied text): refusing to expand a possible alias bomb"
        ),
    )
}

impl Pos {
    fn at_marker(m: &Marker) -> Pos {
        Pos {
            line: u32::try_from(m.line()).unwrap_or(u32::MAX),
            column: u32::try_from(m.col().saturating_add(1)).unwrap_or(u32::MAX),
        }
    }
}

fn scan_error(e: &ScanError) -> SyntaxError {
    let message = match e.kind() {
        ErrorKind::UnknownAnchor => "alias references unknown anchor".to_string(),
        _ => e.info(),
    };
    syntax(Pos::at_marker(e.marker()), message)
}

/// A tag on a node of the wrong kind (`!!str [a]`, `!!map x`).
fn check_tag(tag: Option<&Rc<TagInfo>>, kind: NodeKind, pos: Pos) -> Result<(), SyntaxError> {
    let Some(tag) = tag else { return Ok(()) };
    match tag.kind.requires() {
        Some(required) if required != kind => Err(syntax(
            pos,
            if tag.kind == TagKind::Include {
                "!include currently only supports the scalar form: !include <path>".to_string()
            } else {
                format!("unsupported tag `{}`", tag.written)
            },
        )),
        _ => Ok(()),
    }
}

impl<'a> Events<'a> {
    /// The events of `text`.
    pub(super) fn new(text: &'a str) -> Self {
        let mut options = Options::default();
        // comments are checked as syntax but nothing reads them
        options.emit_comments = false;
        Events {
            parser: Parser::with_options(StrInput::new(text), options),
            anchors: Vec::new(),
            recordings: Vec::new(),
            replay: None,
            depth: 0,
            replayed: 0,
            copied: 0,
            copied_bytes: 0,
        }
    }

    /// The next node event, or `None` at the end of the text.
    pub(super) fn next(&mut self) -> Result<Option<Item<'a>>, SyntaxError> {
        loop {
            if let Some(replay) = &mut self.replay {
                if let Some((ev, pos)) = replay.events.get(replay.next) {
                    let (ev, pos, site) = (ev.clone(), *pos, replay.site);
                    replay.next += 1;
                    self.replayed += 1;
                    if self.replayed > MAX_ALIAS_EVENTS {
                        return Err(alias_bomb(site));
                    }
                    self.track_depth(&ev, site)?;
                    self.record(&ev, pos, site)?;
                    return Ok(Some(Item {
                        ev,
                        pos,
                        origin: Origin::Alias(site),
                    }));
                }
                self.replay = None;
            }
            let Some(next) = self.parser.next() else {
                return Ok(None);
            };
            let (event, span) = next.map_err(|e| scan_error(&e))?;
            let pos = Pos::at_marker(&span.start);
            let (ev, anchor) = match event {
                Event::Scalar(text, style, anchor, tag) => {
                    let tag = tag.map(|t| Rc::new(TagInfo::new(&t)));
                    check_tag(tag.as_ref(), NodeKind::Scalar, pos)?;
                    (Ev::Scalar { text, style, tag }, anchor)
                }
                Event::SequenceStart(_, anchor, tag) => {
                    self.enter(pos)?;
                    let tag = tag.map(|t| Rc::new(TagInfo::new(&t)));
                    check_tag(tag.as_ref(), NodeKind::Sequence, pos)?;
                    (Ev::SeqStart { tag }, anchor)
                }
                Event::MappingStart(_, anchor, tag) => {
                    self.enter(pos)?;
                    let tag = tag.map(|t| Rc::new(TagInfo::new(&t)));
                    check_tag(tag.as_ref(), NodeKind::Mapping, pos)?;
                    (Ev::MapStart { tag }, anchor)
                }
                Event::SequenceEnd => (Ev::SeqEnd, 0),
                Event::MappingEnd => (Ev::MapEnd, 0),
                Event::Alias(anchor) => {
                    if self.recordings.iter().any(|r| r.anchor == anchor) {
                        (Ev::Recursive { anchor }, 0)
                    } else {
                        let events = self
                            .anchors
                            .get(anchor)
                            .and_then(Option::as_ref)
                            .ok_or_else(|| syntax(pos, "alias references unknown anchor"))?;
                        self.replay = Some(Replay {
                            events: Rc::clone(events),
                            next: 0,
                            site: pos,
                        });
                        continue;
                    }
                }
                Event::DocumentStart(..) | Event::DocumentEnd => {
                    // anchors belong to one document
                    self.anchors.clear();
                    self.recordings.clear();
                    self.replay = None;
                    continue;
                }
                _ => continue,
            };
            self.live(&ev, pos, anchor)?;
            return Ok(Some(Item {
                ev,
                pos,
                origin: Origin::Direct,
            }));
        }
    }

    /// Records an event read from the text into the anchored nodes it is part of.
    fn live(&mut self, ev: &Ev<'a>, pos: Pos, anchor: usize) -> Result<(), SyntaxError> {
        match ev {
            Ev::SeqStart { .. } | Ev::MapStart { .. } => {
                for r in &mut self.recordings {
                    r.depth += 1;
                }
                self.record(ev, pos, pos)?;
                if anchor != 0 {
                    self.copy(ev, pos)?;
                    self.recordings.push(Recording {
                        anchor,
                        depth: 1,
                        events: vec![(ev.clone(), pos)],
                    });
                }
            }
            Ev::SeqEnd | Ev::MapEnd => {
                self.depth = self.depth.saturating_sub(1);
                self.record(ev, pos, pos)?;
                for r in &mut self.recordings {
                    r.depth = r.depth.saturating_sub(1);
                }
                while self.recordings.last().is_some_and(|r| r.depth == 0) {
                    if let Some(done) = self.recordings.pop() {
                        self.set_anchor(done.anchor, done.events.into());
                    }
                }
            }
            Ev::Scalar { .. } | Ev::Recursive { .. } => {
                self.record(ev, pos, pos)?;
                if anchor != 0 {
                    self.copy(ev, pos)?;
                    self.set_anchor(anchor, Rc::from(vec![(ev.clone(), pos)]));
                }
            }
        }
        Ok(())
    }

    fn set_anchor(&mut self, anchor: usize, events: Anchored<'a>) {
        if anchor >= self.anchors.len() {
            self.anchors.resize_with(anchor + 8, || None);
        }
        self.anchors[anchor] = Some(events);
    }

    fn enter(&mut self, pos: Pos) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(syntax(
                pos,
                format!("more than {MAX_DEPTH} levels of nested mappings and sequences"),
            ));
        }
        Ok(())
    }

    fn track_depth(&mut self, ev: &Ev<'a>, site: Pos) -> Result<(), SyntaxError> {
        match ev {
            Ev::SeqStart { .. } | Ev::MapStart { .. } => self.enter(site),
            Ev::SeqEnd | Ev::MapEnd => {
                self.depth = self.depth.saturating_sub(1);
                Ok(())
            }
            Ev::Scalar { .. } | Ev::Recursive { .. } => Ok(()),
        }
    }

    /// Appends an event to every anchored node being recorded.
    fn record(&mut self, ev: &Ev<'a>, pos: Pos, err_pos: Pos) -> Result<(), SyntaxError> {
        for i in 0..self.recordings.len() {
            self.copy(ev, err_pos)?;
            self.recordings[i].events.push((ev.clone(), pos));
        }
        Ok(())
    }

    /// Charges one copy of an event to the alias budget.
    fn copy(&mut self, ev: &Ev<'a>, err_pos: Pos) -> Result<(), SyntaxError> {
        self.copied += 1;
        self.copied_bytes = self.copied_bytes.saturating_add(ev.owned_bytes());
        if self.copied > MAX_ALIAS_EVENTS || self.copied_bytes > MAX_ALIAS_BYTES {
            return Err(alias_bomb(err_pos));
        }
        Ok(())
    }
}
