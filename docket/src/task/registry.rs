//! The registry of tasks linked into the binary, filled by `inventory`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use super::TaskOptions;
use crate::error::TaskError;
use crate::execution::Execution;

/// The future a runner returns: the serialized output (`None` when there is nothing to
/// store) or the run's failure.
#[doc(hidden)]
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
    #[doc(hidden)]
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
///
/// ```
/// #[docket::task(name = "listed")]
/// async fn listed_task() {}
///
/// assert!(docket::task::registered().any(|t| t.name() == "listed"));
/// ```
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
