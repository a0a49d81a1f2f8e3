//! The README and the production guide name only flags, `DOCKET_*` variables and metrics
//! that exist: every `--flag` and variable in the command tree, every `docket_*` metric
//! among those docket exports.

use std::collections::BTreeSet;

use clap::CommandFactory;

use super::args::Cli;
use crate::observe::metrics::exported_names;

/// The documents checked, by their path in the repository.
const DOCUMENTS: &[(&str, &str)] = &[
    ("README.md", include_str!("../../../README.md")),
    (
        "docs/production.md",
        include_str!("../../../docs/production.md"),
    ),
];

/// Flags the documents show on other programs' command lines, with the program.
const OTHER_PROGRAMS_FLAGS: &[(&str, &str)] = &[
    // `cargo run --example`, `cargo test --workspace --locked`, `cargo install --path`,
    // `cargo build --release --target ...` (the lean worker build).
    ("--example", "cargo"),
    ("--workspace", "cargo"),
    ("--locked", "cargo"),
    ("--path", "cargo"),
    ("--release", "cargo"),
    ("--target", "cargo"),
    // `cargo run -p docket-bench -- --json FILE --only SCENARIO`.
    ("--json", "docket-bench"),
    ("--only", "docket-bench"),
    // `redis-cli --scan --pattern 'orders:runs:*'` (watching Redis memory).
    ("--scan", "redis-cli"),
    ("--pattern", "redis-cli"),
];

/// Names that look like metrics but are the metrics' labels.
const LABELS: &[&str] = &["docket_name", "docket_worker", "docket_task"];

/// The words starting with `start` (not inside a longer word), continued while `more`
/// holds, without a trailing separator.
fn words<'a>(text: &'a str, start: &'a str, more: fn(char) -> bool) -> Vec<&'a str> {
    text.match_indices(start)
        .filter(|&(at, _)| {
            !text[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .map(|(at, _)| {
            let rest = &text[at + start.len()..];
            let end = rest.find(|c: char| !more(c)).unwrap_or(rest.len());
            let word = &text[at..at + start.len() + end];
            word.trim_end_matches(['-', '_'])
        })
        .filter(|word| word.len() > start.len())
        .collect()
}

/// Every `--flag` of `text`; `--[no-]name` counts as `--name` and `--no-name`.
fn flags(text: &str) -> Vec<String> {
    let mut found: Vec<String> = words(text, "--", |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
    })
    .into_iter()
    .filter(|flag| flag.as_bytes()[2].is_ascii_lowercase())
    .map(str::to_owned)
    .collect();
    for negatable in words(text, "--[no-]", |c| c.is_ascii_lowercase() || c == '-') {
        let name = &negatable["--[no-]".len()..];
        found.push(format!("--{name}"));
        found.push(format!("--no-{name}"));
    }
    found
}

/// Every long flag and environment variable of the command tree, every subcommand's
/// included (and the `--help` and `--version` clap adds).
fn command_tree() -> (BTreeSet<String>, BTreeSet<String>) {
    fn walk(command: &clap::Command, flags: &mut BTreeSet<String>, vars: &mut BTreeSet<String>) {
        for arg in command.get_arguments() {
            for long in arg.get_long_and_visible_aliases().into_iter().flatten() {
                flags.insert(format!("--{long}"));
            }
            if let Some(env) = arg.get_env() {
                vars.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, flags, vars);
        }
    }
    let mut command = Cli::command();
    command.build();
    let (mut flags, mut vars) = (BTreeSet::new(), BTreeSet::new());
    walk(&command, &mut flags, &mut vars);
    (flags, vars)
}

/// What `text` (the document `file`) names that does not exist, one line each.
fn unknown_names(file: &str, text: &str) -> Vec<String> {
    let (known_flags, known_vars) = command_tree();
    let metrics: BTreeSet<String> = exported_names().collect();
    let mut unknown = BTreeSet::new();
    for flag in flags(text) {
        let other = OTHER_PROGRAMS_FLAGS.iter().any(|(f, _)| *f == flag);
        if !known_flags.contains(&flag) && !other {
            unknown.insert(format!(
                "{file} mentions `{flag}`, which no docket command takes"
            ));
        }
    }
    for var in words(text, "DOCKET_", |c| c.is_ascii_uppercase() || c == '_') {
        if !known_vars.contains(var) {
            unknown.insert(format!(
                "{file} mentions `{var}`, which no docket option reads"
            ));
        }
    }
    for metric in words(text, "docket_", |c| c.is_ascii_lowercase() || c == '_') {
        if !metrics.contains(metric) && !LABELS.contains(&metric) {
            unknown.insert(format!(
                "{file} mentions `{metric}`, which docket does not export"
            ));
        }
    }
    unknown.into_iter().collect()
}

#[test]
fn the_docs_name_only_flags_variables_and_metrics_that_exist() {
    let unknown: Vec<String> = DOCUMENTS
        .iter()
        .flat_map(|(file, text)| unknown_names(file, text))
        .collect();
    assert!(unknown.is_empty(), "{}", unknown.join("\n"));
}

#[test]
fn the_check_reads_what_the_docs_name() {
    let guide = DOCUMENTS[1].1;
    let found = flags(guide);
    for flag in [
        "--drain-timeout",
        "--schedule-automatic-tasks",
        "--no-schedule-automatic-tasks",
    ] {
        assert!(
            found.iter().any(|f| f == flag),
            "{flag} not found in {found:?}"
        );
    }
    assert!(words(guide, "DOCKET_", |c| c.is_ascii_uppercase() || c == '_').len() >= 15);
    assert!(words(guide, "docket_", |c| c.is_ascii_lowercase() || c == '_').len() >= 15);
    // Each kind of mistake is caught and names its file.
    let made_up = "docket worker --no-such-flag\nDOCKET_NO_SUCH_VARIABLE=1\ndocket_tasks_invented";
    assert_eq!(
        unknown_names("made-up.md", made_up),
        [
            "made-up.md mentions `--no-such-flag`, which no docket command takes",
            "made-up.md mentions `DOCKET_NO_SUCH_VARIABLE`, which no docket option reads",
            "made-up.md mentions `docket_tasks_invented`, which docket does not export",
        ]
    );
}

/// The guide's ACL lines are the README's, which the end-to-end suite creates its users
/// with (tests/e2e/deployments.rs reads them from the README).
#[test]
fn the_guide_s_acl_lines_are_the_tested_ones() {
    let acl_lines = |text: &'static str| -> Vec<&'static str> {
        text.lines()
            .filter(|line| line.starts_with("ACL SETUSER docket-user "))
            .collect()
    };
    let readme = acl_lines(DOCUMENTS[0].1);
    let guide = acl_lines(DOCUMENTS[1].1);
    assert_eq!(readme.len(), 2, "{readme:?}");
    assert_eq!(guide, readme);
}
