//! A YAML tree that remembers where every node came from (file, line, column), built
//! from `yaml-rust2`'s event parser. Anchors, aliases and merge keys (`<<`) are
//! resolved here; duplicate keys are errors. Scalars stay strings (with a flag for
//! plain style) and are typed later by the decoder, as Compose does.
//!
//! The tree is bounded ([`crate::limits`]): the text's size, the nesting depth, the
//! number of nodes, and the share of them that aliases produce (Go's yaml.v3 rule, so
//! what Compose refuses as "excessive aliasing" is refused here too, before it is built).

use crate::error::{LoadError, Pos};
use crate::limits::{allowed_alias_ratio, MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES};
use std::collections::HashMap;
use std::sync::Arc;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// A scalar's text; `plain` is false for quoted and block scalars.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Keys in document order; keys are scalars.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// A new node.
    pub fn new(value: Value, pos: Pos) -> Node {
        Node { value, pos }
    }

    /// A plain-text scalar node.
    pub fn scalar(text: impl Into<String>, pos: Pos) -> Node {
        Node::new(
            Value::Scalar {
                text: text.into(),
                plain: false,
            },
            pos,
        )
    }

    /// The scalar text, if this is a scalar.
    pub fn text(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The entry under `key`, if this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.text() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A word for the node's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Parses one YAML document. An empty document yields a `Null` node.
/// Fails, with a position and what to do, when the text or the tree it expands to
/// exceeds a bound of [`crate::limits`].
pub fn parse(text: &str, file: &Arc<str>) -> Result<Node, LoadError> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(LoadError::at(
            Pos::new(file.clone(), 1, 1),
            format!(
                "the file is {} bytes, more than the {} MiB Mooring parses; split it or keep large data out of it",
                text.len(),
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    let mut builder = Builder {
        file: file.clone(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        error: None,
        nodes: 0,
        aliased: 0,
    };
    let mut parser = Parser::new_from_str(text);
    let parsed = parser.load(&mut builder, true);
    // A bound hit first explains better than the parser's own limits it leads to.
    if let Some(err) = builder.error {
        return Err(err);
    }
    parsed.map_err(|e| {
        let m = e.marker();
        let pos = Pos::new(file.clone(), m.line(), m.col() + 1);
        if e.info() == "recursion limit exceeded" {
            // The scanner reads flow collections ahead of the events and stops at 255.
            return LoadError::at(pos, "YAML flow collections ([ ] { }) nested more than 255 levels deep; flatten the structure");
        }
        LoadError::at(pos, format!("invalid YAML: {}", e.info()))
    })?;
    let mut docs = builder.docs.into_iter();
    let first = docs
        .next()
        .unwrap_or_else(|| Node::new(Value::Null, Pos::new(file.clone(), 1, 1)));
    if let Some(second) = docs.next() {
        return Err(LoadError::at(
            second.pos,
            "a Compose file holds one YAML document; split the others into their own files",
        ));
    }
    Ok(first)
}

enum Frame {
    Seq {
        anchor: usize,
        pos: Pos,
        items: Vec<Node>,
    },
    Map {
        anchor: usize,
        pos: Pos,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        merges: Vec<Node>,
    },
}

struct Builder {
    file: Arc<str>,
    stack: Vec<Frame>,
    /// Anchored nodes with their size in nodes.
    anchors: HashMap<usize, (Node, usize)>,
    docs: Vec<Node>,
    error: Option<LoadError>,
    /// Nodes in the tree so far, aliases expanded.
    nodes: usize,
    /// Of those, the nodes that aliases produced.
    aliased: usize,
}

/// The number of nodes in a tree (a mapping entry's key and value both count).
fn size(node: &Node) -> usize {
    1 + match &node.value {
        Value::Null | Value::Scalar { .. } => 0,
        Value::Seq(items) => items.iter().map(size).sum(),
        Value::Map(entries) => entries.iter().map(|(k, v)| size(k) + size(v)).sum(),
    }
}

impl Builder {
    /// Counts `count` new nodes (`aliased` when an alias produces them) and fails when
    /// the document passes a bound.
    fn count(&mut self, count: usize, aliased: bool, pos: &Pos) -> Result<(), LoadError> {
        self.nodes = self.nodes.saturating_add(count);
        if aliased {
            self.aliased = self.aliased.saturating_add(count);
        }
        if self.nodes > MAX_NODES {
            return Err(LoadError::at(
                pos.clone(),
                format!(
                    "the YAML document expands to more than {MAX_NODES} nodes{}; write a smaller file",
                    if self.aliased > 0 {
                        format!(" ({} of them through aliases)", self.aliased)
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        if self.aliased > 100
            && self.nodes > 1000
            && self.aliased as f64 / self.nodes as f64 > allowed_alias_ratio(self.nodes)
        {
            return Err(LoadError::at(
                pos.clone(),
                format!(
                    "excessive YAML aliasing: aliases expand to {} of the document's {} nodes so far \
                     (the alias bound, as in Docker Compose, allows {:.0}%); \
                     write the repeated values out or use fewer nested aliases",
                    self.aliased,
                    self.nodes,
                    allowed_alias_ratio(self.nodes) * 100.0
                ),
            ));
        }
        Ok(())
    }

    fn pos(&self, mark: Marker) -> Pos {
        Pos::new(self.file.clone(), mark.line(), mark.col() + 1)
    }

    fn push_node(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            let n = size(&node);
            self.anchors.insert(anchor, (node.clone(), n));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                key,
                merges,
                ..
            }) => match key.take() {
                None => {
                    if !matches!(node.value, Value::Scalar { .. }) {
                        self.error.get_or_insert(LoadError::at(
                            node.pos.clone(),
                            "mapping keys must be scalars",
                        ));
                    }
                    *key = Some(node);
                }
                Some(k) => {
                    if k.text() == Some("<<")
                        && matches!(&k.value, Value::Scalar { plain: true, .. })
                    {
                        merges.push(node);
                    } else if let Some((prev, _)) =
                        entries.iter().find(|(p, _)| p.text() == k.text())
                    {
                        let msg = format!(
                            "key {:?} is already defined at line {}",
                            k.text().unwrap_or(""),
                            prev.pos.line
                        );
                        self.error.get_or_insert(LoadError::at(k.pos, msg));
                    } else {
                        entries.push((k, node));
                    }
                }
            },
        }
    }

    fn finish_map(&mut self, pos: Pos, mut entries: Vec<(Node, Node)>, merges: Vec<Node>) -> Node {
        // Merge keys: explicit keys win, then earlier merged maps win over later ones.
        for merge in merges {
            let sources = match merge.value {
                Value::Map(m) => vec![m],
                Value::Seq(items) => items
                    .into_iter()
                    .filter_map(|n| match n.value {
                        Value::Map(m) => Some(m),
                        _ => {
                            self.error.get_or_insert(LoadError::at(
                                n.pos,
                                "a merge key (<<) takes a mapping or a list of mappings",
                            ));
                            None
                        }
                    })
                    .collect(),
                _ => {
                    self.error.get_or_insert(LoadError::at(
                        merge.pos,
                        "a merge key (<<) takes a mapping or a list of mappings",
                    ));
                    vec![]
                }
            };
            for source in sources {
                for (k, v) in source {
                    if !entries.iter().any(|(e, _)| e.text() == k.text()) {
                        entries.push((k, v));
                    }
                }
            }
        }
        Node::new(Value::Map(entries), pos)
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos = self.pos(mark);
        let counted = match &ev {
            Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..) => {
                self.count(1, false, &pos)
            }
            Event::Alias(id) => match self.anchors.get(id) {
                Some((_, n)) => self.count(*n, true, &pos),
                None => Ok(()),
            },
            _ => Ok(()),
        };
        if let Err(e) = counted {
            self.error = Some(e);
            return;
        }
        if matches!(ev, Event::SequenceStart(..) | Event::MappingStart(..))
            && self.stack.len() >= MAX_DEPTH
        {
            self.error = Some(LoadError::at(
                pos,
                format!("YAML nested more than {MAX_DEPTH} levels deep; flatten the structure"),
            ));
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let mut plain = style == TScalarStyle::Plain;
                if let Some(tag) = tag {
                    let t = format!("{}{}", tag.handle, tag.suffix);
                    if t == "tag:yaml.org,2002:str" || t == "!!str" {
                        plain = false;
                    } else if !(t.starts_with("tag:yaml.org,2002:") || t.starts_with("!!")) {
                        self.error =
                            Some(LoadError::at(pos, format!("YAML tag {t} is not supported")));
                        return;
                    }
                }
                let value = if plain && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL")
                {
                    Value::Null
                } else {
                    Value::Scalar { text, plain }
                };
                self.push_node(Node::new(value, pos), anchor);
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag)
                if tag.as_ref().is_some_and(|t| {
                    !t.handle.starts_with("!!") && !t.handle.starts_with("tag:yaml.org")
                }) =>
            {
                let _ = anchor;
                let t = tag
                    .map(|t| format!("{}{}", t.handle, t.suffix))
                    .unwrap_or_default();
                self.error = Some(LoadError::at(pos, format!("YAML tag {t} is not supported")));
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                anchor,
                pos,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                anchor,
                pos,
                entries: Vec::new(),
                key: None,
                merges: Vec::new(),
            }),
            Event::SequenceEnd => {
                if let Some(Frame::Seq { anchor, pos, items }) = self.stack.pop() {
                    self.push_node(Node::new(Value::Seq(items), pos), anchor);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    anchor,
                    pos,
                    entries,
                    merges,
                    ..
                }) = self.stack.pop()
                {
                    let node = self.finish_map(pos, entries, merges);
                    self.push_node(node, anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some((node, _)) => {
                    let mut node = node.clone();
                    node.pos = pos;
                    self.push_node(node, 0);
                }
                None => self.error = Some(LoadError::at(pos, "alias refers to an unknown anchor")),
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Node, LoadError> {
        parse(s, &Arc::from("c.yaml"))
    }

    #[test]
    fn positions_are_one_based() {
        let n = p("services:\n  web:\n    image: x\n").unwrap();
        let image = n
            .get("services")
            .unwrap()
            .get("web")
            .unwrap()
            .get("image")
            .unwrap();
        assert_eq!((image.pos.line, image.pos.col), (3, 12));
        assert_eq!(image.text(), Some("x"));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let n = p("x-base: &base\n  a: 1\n  b: 2\ns:\n  <<: *base\n  b: 3\nt: *base\n").unwrap();
        let s = n.get("s").unwrap();
        assert_eq!(s.get("a").unwrap().text(), Some("1"));
        assert_eq!(s.get("b").unwrap().text(), Some("3"));
        assert_eq!(n.get("t").unwrap().get("b").unwrap().text(), Some("2"));
    }

    #[test]
    fn nulls_and_quoting() {
        let n = p("a:\nb: ~\nc: 'null'\nd: \"1\"\ne: 1\n").unwrap();
        assert_eq!(n.get("a").unwrap().value, Value::Null);
        assert_eq!(n.get("b").unwrap().value, Value::Null);
        assert_eq!(
            n.get("c").unwrap().value,
            Value::Scalar {
                text: "null".into(),
                plain: false
            }
        );
        assert_eq!(
            n.get("d").unwrap().value,
            Value::Scalar {
                text: "1".into(),
                plain: false
            }
        );
        assert_eq!(
            n.get("e").unwrap().value,
            Value::Scalar {
                text: "1".into(),
                plain: true
            }
        );
    }

    #[test]
    fn duplicate_keys_are_errors_with_position() {
        let e = p("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.yaml:3:1: key \"a\" is already defined at line 1"
        );
    }

    #[test]
    fn malformed_yaml_reports_position() {
        let e = p("services:\n  web:\n    image: [x\n").unwrap_err();
        assert!(e.to_string().starts_with("c.yaml:"), "{e}");
        assert!(e.to_string().contains("invalid YAML"), "{e}");
    }

    /// The classic billion-laughs document: nine levels of nine aliases, 9^9 strings
    /// once expanded, in about 500 bytes.
    pub(crate) const BILLION_LAUGHS: &str = "services:
  web:
    image: x
x-a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]
x-b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
x-c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
x-d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
x-e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
x-f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
x-g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
x-h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
x-i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
";

    #[test]
    fn billion_laughs_is_refused_at_the_alias() {
        assert!(BILLION_LAUGHS.len() < 600, "{}", BILLION_LAUGHS.len());
        let started = std::time::Instant::now();
        let e = p(BILLION_LAUGHS).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let pos = e.pos.clone().unwrap();
        assert_eq!(&*pos.file, "c.yaml");
        // The first alias that takes the share past 99%: in the list of `x-d`.
        assert_eq!(pos.line, 7, "{e}");
        assert!(e.message.contains("excessive YAML aliasing"), "{e}");
        assert!(e.message.contains("alias bound"), "{e}");
    }

    #[test]
    fn many_aliases_of_small_anchors_still_load() {
        // 300 services each merging one anchor: aliases give about half the nodes.
        let mut text = String::from("x-base: &base\n  restart: always\n  image: x\nservices:\n");
        for i in 0..300 {
            text.push_str(&format!("  s{i}:\n    <<: *base\n    hostname: h{i}\n"));
        }
        let n = p(&text).unwrap();
        let s = n.get("services").unwrap().get("s299").unwrap();
        assert_eq!(s.get("restart").unwrap().text(), Some("always"));
        assert_eq!(s.get("hostname").unwrap().text(), Some("h299"));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = |n: usize| {
            let mut t = String::new();
            for i in 0..n {
                t.push_str(&"  ".repeat(i));
                t.push_str("a:\n");
            }
            t.push_str(&"  ".repeat(n));
            t.push_str("b: 1\n");
            t
        };
        p(&deep(MAX_DEPTH - 1)).unwrap();
        let e = p(&deep(MAX_DEPTH + 5)).unwrap_err();
        // The mapping at line n is the n-th level: the first one too deep is reported.
        assert_eq!(e.pos.as_ref().unwrap().line, MAX_DEPTH + 1, "{e}");
        assert!(e.message.contains("more than 128 levels"), "{e}");
        let flow = |n: usize| format!("a: {}{}", "[".repeat(n), "]".repeat(n));
        let e = p(&flow(MAX_DEPTH + 1)).unwrap_err();
        assert!(e.message.contains("more than 128 levels"), "{e}");
        // Deeper, the scanner's own limit (it reads ahead of the events) speaks first.
        let e = p(&flow(300)).unwrap_err();
        assert!(e.message.contains("nested more than 255 levels"), "{e}");
        assert_eq!(e.pos.as_ref().unwrap().line, 1);
    }

    #[test]
    fn oversized_file_is_refused() {
        let big = format!("a: \"{}\"\n", "x".repeat(MAX_FILE_BYTES as usize));
        let e = p(&big).unwrap_err();
        assert!(e.to_string().starts_with("c.yaml:1:1: the file is"), "{e}");
        assert!(e.message.contains("4 MiB"), "{e}");
    }

    #[test]
    fn too_many_nodes_are_refused() {
        let many = format!("a: [{}]\n", "1,".repeat(MAX_NODES + 1));
        let e = p(&many).unwrap_err();
        assert!(e.message.contains("more than 2000000 nodes"), "{e}");
    }

    #[test]
    fn several_documents_are_refused() {
        let e = p("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e.to_string().contains("one YAML document"), "{e}");
    }
}
