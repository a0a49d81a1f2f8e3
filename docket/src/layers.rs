//! The crate's layers, checked: which top-level module may use which.
//!
//! Plain data ([`crate::model`]) is at the bottom and uses nothing else of the crate; a
//! backend uses only that data and the error type; and no two modules use each other,
//! directly or through others. The test reads the sources (test code left out), collects
//! every `crate::`, `super::` and root path each top-level module uses, and fails naming
//! the file and line of a use that breaks one of those rules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules and what each may use. Everything else of the crate is off
/// limits to it; a cycle anywhere among them fails too.
const ALLOWED: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("error", &["model"]),
    ("backend", &["model", "error"]),
    ("observe", &["model", "error"]),
    ("strikes", &["model", "error", "backend"]),
    ("results", &["model", "error", "backend"]),
    (
        "execution",
        &["model", "error", "backend", "observe", "results"],
    ),
    ("task", &["model", "error", "execution"]),
    (
        "behaviors",
        &["model", "error", "backend", "observe", "execution", "task"],
    ),
    (
        "client",
        &[
            "model",
            "error",
            "backend",
            "observe",
            "strikes",
            "execution",
            "task",
            "behaviors",
            "results",
        ],
    ),
    (
        "inject",
        &["model", "error", "backend", "execution", "task", "client"],
    ),
    (
        "worker",
        &[
            "model",
            "error",
            "backend",
            "observe",
            "strikes",
            "execution",
            "task",
            "behaviors",
            "client",
            "inject",
            "results",
        ],
    ),
    (
        "dashboard",
        &["model", "error", "execution", "task", "client"],
    ),
    (
        "cli",
        &[
            "model",
            "error",
            "backend",
            "observe",
            "strikes",
            "execution",
            "task",
            "client",
            "worker",
            "dashboard",
        ],
    ),
    ("testing", &["model", "error", "client", "task"]),
    (
        "__private",
        &["model", "error", "execution", "inject", "task"],
    ),
];

/// A use of another top-level module: where, and which.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Use {
    file: PathBuf,
    line: usize,
    target: String,
}

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read the source tree") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            // Test suites may use whatever they test.
            if path.file_name().is_some_and(|name| name != "tests") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`None` for the crate root, the binary and
/// this check).
fn owner(file: &Path) -> Option<String> {
    let relative = file.strip_prefix(source_root()).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" | "layers.rs" => None,
        "private.rs" => Some("__private".to_owned()),
        name => Some(name.trim_end_matches(".rs").to_owned()),
    }
}

/// How deep below the top-level module a file's module is (`backend/mod.rs`: 0,
/// `backend/redis/mod.rs` and `backend/url.rs`: 1), to resolve `super::`.
fn depth(file: &Path) -> usize {
    let relative = file.strip_prefix(source_root()).expect("a source file");
    let components = relative.components().count();
    let is_mod = file.file_name().is_some_and(|name| name == "mod.rs");
    components.saturating_sub(if is_mod { 2 } else { 1 })
}

/// The crate root's names (`pub use crate::client::Docket` makes `crate::Docket` a use
/// of `client`).
fn root_names() -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(source_root().join("lib.rs")).expect("read lib.rs");
    let mut names = BTreeMap::new();
    let mut statement = String::new();
    for line in lib.lines().map(str::trim) {
        if statement.is_empty() && !line.starts_with("pub use ") {
            continue;
        }
        statement.push_str(line);
        if !line.ends_with(';') {
            continue;
        }
        let text = std::mem::take(&mut statement);
        let path = text
            .trim_start_matches("pub use ")
            .trim_start_matches("crate::")
            .trim_end_matches(';');
        let (module, items) = path.split_once("::").unwrap_or((path, ""));
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let name = item.rsplit("::").next().unwrap_or(item);
            names.insert(name.to_owned(), module.to_owned());
        }
    }
    names
}

/// The identifier at the start of `text`.
fn ident(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The top-level modules the code of `file` uses, with where.
fn uses(file: &Path, roots: &BTreeMap<String, String>) -> Vec<Use> {
    let text = std::fs::read_to_string(file).expect("read a source file");
    let owner = owner(file);
    let depth = depth(file);
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let code = line.trim_start();
        // Test code may use anything; by convention it closes the file.
        if code.starts_with("#[cfg(test)]") {
            break;
        }
        if code.starts_with("//") {
            continue;
        }
        let mut targets = Vec::new();
        for (at, _) in code.match_indices("crate::") {
            // Skip `docket_crate::` and the like.
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            targets.push(ident(&code[at + "crate::".len()..]).to_owned());
        }
        if depth == 0 {
            for (at, _) in code.match_indices("super::") {
                let before = code[..at].chars().next_back();
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                targets.push(ident(&code[at + "super::".len()..]).to_owned());
            }
        }
        for target in targets {
            // A root name (`crate::Docket`) is a use of the module it comes from.
            let module = roots.get(&target).cloned().unwrap_or(target);
            let internal = ALLOWED.iter().any(|(name, _)| *name == module);
            if internal && owner.as_deref() != Some(module.as_str()) {
                found.push(Use {
                    file: file.to_owned(),
                    line: index + 1,
                    target: module,
                });
            }
        }
    }
    found
}

fn graph() -> BTreeMap<String, Vec<Use>> {
    let mut files = Vec::new();
    rust_files(&source_root(), &mut files);
    files.sort();
    let roots = root_names();
    let mut graph: BTreeMap<String, Vec<Use>> = BTreeMap::new();
    for file in files {
        let Some(owner) = owner(&file) else { continue };
        graph.entry(owner).or_default().extend(uses(&file, &roots));
    }
    graph
}

fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let graph = graph();
    let mut broken = Vec::new();
    for (module, uses) in &graph {
        let Some((_, allowed)) = ALLOWED.iter().find(|(name, _)| name == module) else {
            panic!("`{module}` is a top-level module missing from ALLOWED");
        };
        for found in uses
            .iter()
            .filter(|u| !allowed.contains(&u.target.as_str()))
        {
            broken.push(format!(
                "{}:{}: `{module}` uses `{}`",
                found.file.display(),
                found.line,
                found.target
            ));
        }
    }
    assert!(
        broken.is_empty(),
        "uses across layers:\n{}",
        broken.join("\n")
    );
}

#[test]
fn no_two_modules_use_each_other() {
    let edges: BTreeMap<String, BTreeSet<String>> = graph()
        .into_iter()
        .map(|(module, uses)| (module, uses.into_iter().map(|u| u.target).collect()))
        .collect();
    assert_eq!(cycle(&edges), None, "modules that use each other");
    // The rule the table states, in its own words: plain data uses nothing, a backend
    // only data and errors.
    assert!(edges.get("model").is_none_or(BTreeSet::is_empty));
    let backend: Vec<&str> = edges["backend"].iter().map(String::as_str).collect();
    assert_eq!(backend, ["error", "model"]);
}

#[test]
fn the_checker_sees_a_cycle_when_there_is_one() {
    let edges: BTreeMap<String, BTreeSet<String>> =
        [("a", &["b"][..]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]
            .into_iter()
            .map(|(n, to)| (n.to_owned(), to.iter().map(|t| (*t).to_owned()).collect()))
            .collect();
    assert_eq!(
        cycle(&edges),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
