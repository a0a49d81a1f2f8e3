//! Which tasks a worker serves: [`tasks!`](crate::tasks) names the crates and modules
//! that declare them, so that the compiler checks the names and links the crates.

/// The crates and modules whose tasks a worker serves, as [`tasks!`](crate::tasks)
/// names them. Give it to [`run_worker_with`](crate::run_worker_with) or
/// [`WorkerBuilder::serve`](crate::WorkerBuilder::serve).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskModules {
    modules: Vec<String>,
}

impl TaskModules {
    /// The modules `paths` name, as written in the module `caller` (`crate::`, `self::`
    /// and `super::` are resolved from it). Made by [`tasks!`](crate::tasks).
    #[doc(hidden)]
    pub fn __new(caller: &str, paths: &[&str]) -> Self {
        let modules = paths
            .iter()
            .map(|path| resolve(caller, &path.replace(' ', "")))
            .collect();
        Self { modules }
    }

    /// The module paths, as `module_path!()` spells them.
    pub(crate) fn modules(&self) -> &[String] {
        &self.modules
    }
}

/// `path` as written in the module `caller`, absolute.
fn resolve(caller: &str, path: &str) -> String {
    let mut base: Vec<&str> = caller.split("::").collect();
    let mut rest = path;
    if let Some(after) = rest.strip_prefix("crate::") {
        base.truncate(1);
        rest = after;
    } else if let Some(after) = rest.strip_prefix("self::") {
        rest = after;
    } else if rest.starts_with("super::") {
        while let Some(after) = rest.strip_prefix("super::") {
            base.pop();
            rest = after;
        }
    } else {
        return rest.to_owned();
    }
    base.push(rest);
    base.join("::")
}

/// Names the crates and modules whose tasks a worker serves, and makes sure they are
/// linked into the binary.
///
/// A crate that declares tasks registers them when it is linked, and a binary links a
/// crate only when it uses it: a worker binary whose `main` only calls
/// [`run_worker`](crate::run_worker) does not serve the tasks of a `my_tasks` crate it
/// never names. Naming it here uses it, and the compiler checks that every name exists;
/// the worker then serves exactly the tasks declared there (and the built-in ones), and
/// refuses to start when a name declares none.
///
/// ```no_run
/// # mod my_tasks { #[docket::task] pub async fn greet(name: String) {} }
/// # mod billing { #[docket::task] pub async fn charge(cents: u64) {} }
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     // `my_tasks` would be a library crate of the workspace; `crate::billing`, a
///     // module of this binary.
///     docket::run_worker_with(docket::tasks!(my_tasks, crate::billing)).await
/// }
/// ```
#[macro_export]
macro_rules! tasks {
    ($($first:ident $(:: $rest:ident)*),+ $(,)?) => {{
        $(
            #[allow(unused_imports)]
            use $first $(:: $rest)* as _;
        )+
        $crate::worker::TaskModules::__new(
            ::core::module_path!(),
            &[$(::core::concat!(::core::stringify!($first) $(, "::", ::core::stringify!($rest))*)),+],
        )
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_resolved_from_where_they_are_written() {
        assert_eq!(resolve("myapp", "my_tasks"), "my_tasks");
        assert_eq!(resolve("myapp::main", "crate::billing"), "myapp::billing");
        assert_eq!(resolve("myapp::jobs", "self::mail"), "myapp::jobs::mail");
        assert_eq!(
            resolve("myapp::jobs::x", "super::super::billing"),
            "myapp::billing"
        );
        assert_eq!(resolve("myapp", "my_tasks::billing"), "my_tasks::billing");
    }

    mod declared {
        #[docket::task(name = "serve_probe")]
        pub async fn probe() {}
    }

    #[test]
    fn the_macro_names_modules_the_compiler_checked() {
        let modules = crate::tasks!(self::declared, crate::worker::builtin);
        assert_eq!(
            modules.modules(),
            [
                "docket::worker::serve::tests::declared",
                "docket::worker::builtin"
            ]
        );
    }
}
