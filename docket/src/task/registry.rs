//! The registry of tasks linked into the binary, filled by `inventory`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use crate::execution::Execution;
use crate::model::{TaskError, TaskOptions};

/// The future a runner returns: the serialized output (`None` when there is nothing to
/// store) or the run's failure.
pub type RunFuture = Pin<Box<dyn Future<Output = Result<Option<String>, TaskError>> + Send>>;

/// One task linked into the binary, as `#[docket::task]` registers it.
///
/// Workers discover every registration at startup with [`registered`].
#[derive(Debug)]
pub struct TaskRegistration {
    name: &'static str,
    module_path: &'static str,
    parameters: &'static [&'static str],
    options: TaskOptions,
    runner: fn(Execution) -> RunFuture,
}

impl TaskRegistration {
    /// A registration, as `#[docket::task]` makes it.
    pub const fn new(
        name: &'static str,
        module_path: &'static str,
        parameters: &'static [&'static str],
        options: TaskOptions,
        runner: fn(Execution) -> RunFuture,
    ) -> Self {
        Self {
            name,
            module_path,
            parameters,
            options,
            runner,
        }
    }

    /// The wire name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The Rust module that declared the task (used by `--tasks` filters).
    pub fn module_path(&self) -> &'static str {
        self.module_path
    }

    /// Whether the task is declared in `module` (a path such as `myapp::billing`) or in
    /// a module below it.
    pub(crate) fn is_in(&self, module: &str) -> bool {
        self.module_path == module
            || self
                .module_path
                .strip_prefix(module)
                .is_some_and(|rest| rest.starts_with("::"))
    }

    /// The names of the data parameters, in order.
    pub fn parameters(&self) -> &'static [&'static str] {
        self.parameters
    }

    /// The options declared in the attribute.
    pub fn options(&self) -> &TaskOptions {
        &self.options
    }

    pub(crate) fn runner(&self) -> fn(Execution) -> RunFuture {
        self.runner
    }
}

inventory::collect!(TaskRegistration);

/// Every task registered in this binary, in no particular order.
pub fn registered() -> impl Iterator<Item = &'static TaskRegistration> {
    inventory::iter::<TaskRegistration>.into_iter()
}

/// The tasks one worker runs, by wire name.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskSet {
    by_name: HashMap<&'static str, &'static TaskRegistration>,
}

impl TaskSet {
    pub(crate) fn insert(&mut self, registration: &'static TaskRegistration) {
        self.by_name.insert(registration.name, registration);
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'static TaskRegistration> {
        self.by_name.get(name).copied()
    }

    pub(crate) fn registrations(&self) -> Vec<&'static TaskRegistration> {
        let mut all: Vec<_> = self.by_name.values().copied().collect();
        all.sort_unstable_by_key(|t| t.name);
        all
    }

    pub(crate) fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.by_name.keys().copied().collect();
        names.sort_unstable();
        names
    }
}

/// One task selector: a `--tasks` entry, or an entry given to `WorkerBuilder::tasks`.
#[derive(Debug, PartialEq, Eq)]
enum Selector {
    /// `charge`: a task name, or a top-level module.
    Word(String),
    /// `myapp::billing` or `myapp.billing`.
    Module(String),
    /// `myapp.billing:charge`.
    Qualified { module: String, name: String },
}

impl Selector {
    fn parse(entry: &str) -> Self {
        let bytes = entry.as_bytes();
        // A lone `:` (not half of `::`) separates the module from the task.
        let lone = (0..bytes.len()).rev().find(|&i| {
            bytes[i] == b':' && (i == 0 || bytes[i - 1] != b':') && bytes.get(i + 1) != Some(&b':')
        });
        let module = |path: &str| path.replace('.', "::");
        match lone {
            Some(i) => Self::Qualified {
                module: module(&entry[..i]),
                name: entry[i + 1..].to_owned(),
            },
            None if entry.contains('.') || entry.contains("::") => Self::Module(module(entry)),
            None => Self::Word(entry.to_owned()),
        }
    }

    fn selects(&self, task: &TaskRegistration) -> bool {
        let under = |module: &str| task.is_in(module);
        match self {
            Self::Word(word) => task.name() == word || under(word),
            Self::Module(module) => under(module),
            Self::Qualified { module, name } => task.name() == name && under(module),
        }
    }
}

/// The tasks of `all` declared in `modules` (paths such as `my_tasks` or
/// `myapp::billing`, the modules below them included).
///
/// # Errors
/// A module that declares no task, named, with where the tasks there are come from.
pub(crate) fn in_modules(
    modules: &[String],
    all: &[&'static TaskRegistration],
) -> Result<Vec<&'static TaskRegistration>, String> {
    let mut chosen: Vec<&'static TaskRegistration> = Vec::new();
    for module in modules {
        let declared: Vec<_> = all.iter().copied().filter(|t| t.is_in(module)).collect();
        if declared.is_empty() {
            let mut known: Vec<&str> = all.iter().map(|t| t.module_path()).collect();
            known.sort_unstable();
            known.dedup();
            return Err(format!(
                "`{module}` declares no task linked into this binary: name the crates or \
                 modules where your `#[docket::task]` functions are; tasks come from {}",
                known.join(", ")
            ));
        }
        for task in declared {
            if !chosen.iter().any(|c| std::ptr::eq(*c, task)) {
                chosen.push(task);
            }
        }
    }
    Ok(chosen)
}

/// The tasks of `all` that `entries` select. Each entry is a task name, a module path
/// (`myapp::billing` or `myapp.billing`: the tasks declared in it or below), or
/// `module:task` (`myapp.billing:charge`); blank entries select nothing.
///
/// # Errors
/// An entry that selects nothing, named, with the tasks there are.
pub(crate) fn select(
    entries: &[String],
    all: &[&'static TaskRegistration],
) -> Result<Vec<&'static TaskRegistration>, String> {
    let entries = entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty());
    let mut chosen: Vec<&'static TaskRegistration> = Vec::new();
    for entry in entries {
        let selector = Selector::parse(entry);
        let matches: Vec<_> = all
            .iter()
            .copied()
            .filter(|t| selector.selects(t))
            .collect();
        if matches.is_empty() {
            let mut known: Vec<String> = all
                .iter()
                .map(|t| format!("{} ({})", t.name(), t.module_path()))
                .collect();
            known.sort();
            return Err(format!(
                "`{entry}` matches no task linked into this binary; use a task name, a \
                 module path or module:task; the tasks are: {}",
                known.join(", ")
            ));
        }
        for task in matches {
            if !chosen.iter().any(|c| std::ptr::eq(*c, task)) {
                chosen.push(task);
            }
        }
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    mod billing {
        #[docket::task(name = "cli_charge")]
        pub async fn charge() {}

        pub mod refunds {
            #[docket::task(name = "cli_refund")]
            pub async fn refund() {}
        }
    }

    #[docket::task(name = "cli_audit")]
    async fn audit() {}

    fn names(entries: &[&str]) -> Result<Vec<&'static str>, String> {
        let entries: Vec<String> = entries.iter().map(|e| (*e).to_owned()).collect();
        let chosen = select(&entries, &registered().collect::<Vec<_>>())?;
        let mut names: Vec<_> = chosen.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        Ok(names)
    }

    #[test]
    fn by_name_module_and_module_task() {
        let here = module_path!();
        assert_eq!(names(&["cli_audit"]).unwrap(), ["cli_audit"]);
        assert_eq!(
            names(&[&format!("{here}::billing")]).unwrap(),
            ["cli_charge", "cli_refund"]
        );
        let dotted = format!("{}.billing.refunds", here.replace("::", "."));
        assert_eq!(names(&[&dotted]).unwrap(), ["cli_refund"]);
        let qualified = format!("{}.billing:cli_charge", here.replace("::", "."));
        assert_eq!(names(&[&qualified]).unwrap(), ["cli_charge"]);
        assert_eq!(
            names(&["cli_audit", "cli_charge", "cli_audit"]).unwrap(),
            ["cli_audit", "cli_charge"]
        );
        assert!(
            select(&[], &registered().collect::<Vec<_>>())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn an_entry_that_selects_nothing_is_named() {
        let error = names(&["cli_audit", "nope"]).unwrap_err();
        assert!(error.contains("`nope` matches no task"), "{error}");
        assert!(error.contains("cli_audit ("), "{error}");
        // A module prefix must end at a `::` boundary.
        let here = module_path!();
        let error = names(&[&format!("{here}::bill")]).unwrap_err();
        assert!(error.contains("matches no task"), "{error}");
        let qualified = format!("{here}::billing:cli_audit");
        assert!(names(&[&qualified]).is_err());
    }
}
