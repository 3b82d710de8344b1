//! `tollgate --help` and each sub-command's `--help` against README's "Command line" section:
//! the same sub-commands, and for each the same options, both ways — so neither can gain or lose
//! one without the other.

use super::common::{root, run};
use std::collections::BTreeSet;

/// README's command-line block: sub-command → the `--options` its line(s) name (comments after
/// `#` left out).
fn readme_commands() -> Vec<(String, BTreeSet<String>)> {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let section = readme
        .split("## Command line")
        .nth(1)
        .expect("README.md has a Command line section");
    let block = section
        .split("```")
        .nth(1)
        .expect("the Command line section opens with a code block");
    block
        .lines()
        .filter_map(|line| line.split('#').next()?.trim().strip_prefix("tollgate "))
        .filter_map(|rest| {
            let mut words = rest.split_whitespace();
            let command = words.next()?.to_owned();
            (!command.starts_with('-')).then(|| (command, options(rest)))
        })
        .collect()
}

/// The `--long` options named in `text`, without `--help` and `--version`.
fn options(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .filter(|w| !["--help", "--version"].contains(w))
        .map(str::to_owned)
        .collect()
}

/// The sub-commands `tollgate --help` lists (without `help`).
fn listed_commands(help: &str) -> BTreeSet<String> {
    help.split("Commands:")
        .nth(1)
        .expect("the help lists commands")
        .split("Options:")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_command_and_option_of_the_help_is_in_the_readme_and_back() {
    let (ok, help, _) = run(&["--help"], &[]);
    assert!(ok, "tollgate --help fails");
    let documented = readme_commands();
    let names: BTreeSet<String> = documented.iter().map(|(c, _)| c.clone()).collect();
    assert_eq!(
        listed_commands(&help),
        names,
        "sub-commands: tollgate --help vs README"
    );
    for (command, readme_options) in &documented {
        let (ok, help, _) = run(&[command, "--help"], &[]);
        assert!(ok, "tollgate {command} --help fails");
        assert_eq!(
            &options(&help),
            readme_options,
            "options of `tollgate {command}`: its --help vs README"
        );
    }
}

#[test]
fn options_are_read_from_usage_lines() {
    let found = options("tollgate assertion --key PEM [--sub SUB] [--count 1]");
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["--count", "--key", "--sub"]
    );
    assert!(options("[--help] --version").is_empty());
}
