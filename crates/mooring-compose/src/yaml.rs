//! A YAML tree that remembers where every node came from (file, line, column), built
//! from `yaml-rust2`'s event parser. Anchors, aliases and merge keys (`<<`) are
//! resolved here; duplicate keys are errors. Scalars stay strings (with a flag for
//! plain style) and are typed later by the decoder, as Compose does.

use crate::error::{LoadError, Pos};
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
pub fn parse(text: &str, file: &Arc<str>) -> Result<Node, LoadError> {
    let mut builder = Builder {
        file: file.clone(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| {
        let m = e.marker();
        LoadError::at(
            Pos::new(file.clone(), m.line(), m.col() + 1),
            format!("invalid YAML: {}", e.info()),
        )
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
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
    anchors: HashMap<usize, Node>,
    docs: Vec<Node>,
    error: Option<LoadError>,
}

impl Builder {
    fn pos(&self, mark: Marker) -> Pos {
        Pos::new(self.file.clone(), mark.line(), mark.col() + 1)
    }

    fn push_node(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
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
                Some(node) => {
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

    #[test]
    fn several_documents_are_refused() {
        let e = p("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e.to_string().contains("one YAML document"), "{e}");
    }
}
