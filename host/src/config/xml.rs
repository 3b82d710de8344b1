//! A small element tree over quick-xml, with the line of every element.
//!
//! `identity.xml` is small (WSO2's full one is ~100 KB) and read once, so building a tree first
//! keeps the well-formedness checks (here) apart from the meaning of the elements
//! (`identity.rs`). Names are local names: WSO2's file declares a default namespace
//! (`xmlns="http://wso2.org/projects/carbon/carbon.xml"`) which we accept and ignore.

use std::path::Path;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::error::{line_column, ConfigError};

#[derive(Debug, Default)]
pub(super) struct Element {
    /// Local name (`Server`, not `ns:Server`).
    pub name: String,
    /// Local attribute names with unescaped values, in document order; namespace
    /// declarations left out.
    pub attrs: Vec<(String, String)>,
    /// The element's own text and CDATA, unescaped, untrimmed.
    pub text: String,
    pub children: Vec<Element>,
    /// 1-based line of the start tag.
    pub line: usize,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a whole document to its root element.
pub(super) fn parse(text: &str, file: &Path) -> Result<Element, ConfigError> {
    let error = |pos: u64, message: String| ConfigError::Xml {
        file: file.to_owned(),
        line: line_of(text, pos),
        message,
    };
    let mut reader = Reader::from_str(text);
    let mut open: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let pos = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| error(reader.error_position(), e.to_string()))?;
        let closed = match event {
            Event::Start(start) => {
                open.push(element(&start, line_of(text, pos)).map_err(|m| error(pos, m))?);
                None
            }
            Event::Empty(start) => {
                Some(element(&start, line_of(text, pos)).map_err(|m| error(pos, m))?)
            }
            // quick-xml has checked that the name matches the open element.
            Event::End(_) => open.pop(),
            Event::Text(t) => {
                let t = t.unescape().map_err(|e| error(pos, e.to_string()))?;
                add_text(&mut open, &t).map_err(|m| error(pos, m))?;
                None
            }
            Event::CData(c) => {
                let t = c.decode().map_err(|e| error(pos, e.to_string()))?;
                add_text(&mut open, &t).map_err(|m| error(pos, m))?;
                None
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => None,
            Event::Eof => break,
        };
        if let Some(el) = closed {
            match (open.last_mut(), &root) {
                (Some(parent), _) => parent.children.push(el),
                (None, None) => root = Some(el),
                (None, Some(first)) => {
                    return Err(error(
                        pos,
                        format!("second root element <{}> after <{}>", el.name, first.name),
                    ))
                }
            }
        }
    }
    if let Some(unclosed) = open.last() {
        return Err(ConfigError::Xml {
            file: file.to_owned(),
            line: unclosed.line,
            message: format!("<{}> is never closed", unclosed.name),
        });
    }
    root.ok_or_else(|| error(0, "no root element".into()))
}

fn element(start: &BytesStart, line: usize) -> Result<Element, String> {
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| format!("<{name}>: {e}"))?;
        if attr.key.as_namespace_binding().is_some() {
            continue;
        }
        let key = String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned();
        let value = attr
            .unescape_value()
            .map_err(|e| format!("<{name}> attribute {key}: {e}"))?;
        attrs.push((key, value.into_owned()));
    }
    Ok(Element {
        name,
        attrs,
        line,
        ..Element::default()
    })
}

fn add_text(open: &mut [Element], text: &str) -> Result<(), String> {
    match open.last_mut() {
        Some(el) => el.text.push_str(text),
        None if text.trim().is_empty() => {}
        None => return Err("text outside the root element".into()),
    }
    Ok(())
}

fn line_of(text: &str, pos: u64) -> usize {
    line_column(text, usize::try_from(pos).unwrap_or(usize::MAX)).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Element {
        parse(text, Path::new("x.xml")).unwrap()
    }

    fn parse_err(text: &str) -> String {
        parse(text, Path::new("conf/identity.xml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn builds_a_tree_with_lines_and_local_names() {
        let root = parse_ok(
            "<?xml version=\"1.0\"?>\n<!-- c -->\n<s:Server xmlns=\"urn:a\" xmlns:s=\"urn:s\">\n  <A k=\"1 &amp; 2\">x &lt; y<![CDATA[ <z> ]]></A>\n  <B/>\n</s:Server>\n",
        );
        assert_eq!(root.name, "Server");
        assert!(root.attrs.is_empty());
        assert_eq!(root.line, 3);
        let a = &root.children[0];
        assert_eq!((a.name.as_str(), a.line), ("A", 4));
        assert_eq!(a.attr("k"), Some("1 & 2"));
        assert_eq!(a.text, "x < y <z> ");
        assert_eq!(
            (root.children[1].name.as_str(), root.children[1].line),
            ("B", 5)
        );
    }

    #[test]
    fn malformed_documents_name_file_and_line() {
        for (text, line) in [
            ("<Server>\n  <A>\n  </B>\n</Server>", 3),
            ("<Server>\n  <A x=1/>\n</Server>", 2),
            ("<Server>\n  <A x=\"1\" x=\"2\"/>\n</Server>", 2),
            ("<Server>\n\n  <A>\n</Server>", 4),
            ("<Server>\n  <A>\n", 2),
            ("<Server/>\n<Server/>", 2),
            ("<Server>\n <A>&nope;</A></Server>", 2),
            ("", 1),
        ] {
            let e = parse_err(text);
            assert!(
                e.starts_with(&format!("conf/identity.xml: line {line}: ")),
                "{text:?}: {e}"
            );
        }
    }
}
