//! Code quoted in the guides is the code that builds: every fenced block under a
//! `<!-- from: PATH -->` comment in docs/*.md must appear, word for word, in that file of the
//! repository. docs/plugins.md quotes the example plugins this way, so an example cannot change
//! without the guide being updated.

use super::common::root;

/// `(path, block)` for each fenced block introduced by `<!-- from: PATH -->`.
fn quoted(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .trim()
            .strip_prefix("<!-- from: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "<!-- from: {path} --> must be followed by a code block"
        );
        let block: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        found.push((path.to_owned(), block.join("\n")));
    }
    found
}

#[test]
fn quoted_code_is_the_code_in_the_repository() {
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("docs")).expect("docs/") {
        let path = entry.expect("a docs entry").path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a guide");
        for (source, block) in quoted(&text) {
            let code = std::fs::read_to_string(root().join(&source))
                .unwrap_or_else(|e| panic!("{}: quotes {source}: {e}", path.display()));
            assert!(
                code.contains(&block),
                "{}: the block quoted from {source} is no longer in it:\n{block}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 9,
        "docs/plugins.md quotes the examples ({checked} blocks found)"
    );
}

#[test]
fn every_example_plugin_is_quoted_in_the_plugin_guide() {
    let guide = std::fs::read_to_string(root().join("docs/plugins.md")).expect("docs/plugins.md");
    let sources: Vec<String> = quoted(&guide).into_iter().map(|(p, _)| p).collect();
    for entry in std::fs::read_dir(root().join("examples")).expect("examples/") {
        let name = entry
            .expect("an example")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let lib = format!("examples/{name}/src/lib.rs");
        assert!(
            sources.contains(&lib),
            "docs/plugins.md quotes nothing of {lib}"
        );
    }
}

#[test]
fn quoted_blocks_are_found() {
    let doc = "text\n<!-- from: a.rs -->\n```rust\nfn a() {}\n\nfn b() {}\n```\nmore\n```rust\nnot quoted\n```\n";
    assert_eq!(
        quoted(doc),
        [("a.rs".to_owned(), "fn a() {}\n\nfn b() {}".to_owned())]
    );
}
