//! The worker programs the bench spawns. `docket-bench-worker` is built here as `cargo
//! build --release` makes it (or given with `--worker-exe`), and a second time as the
//! lean build docs/production.md recommends where memory is tight: glibc linked in
//! statically, not position-independent, optimised for size with link-time
//! optimisation.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The worker program.
const WORKER_BIN: &str = "docket-bench-worker";

/// The waiting scenario's producer program, built beside the worker.
pub(crate) const WAITER_BIN: &str = "docket-bench-waiter";

/// The lean build's compiler flags; with an explicit `--target`, so that they stay off
/// build scripts and procedural macros.
pub(crate) const LEAN_RUSTFLAGS: &str = "-C relocation-model=static -C target-feature=+crt-static";

/// The lean build's release profile.
pub(crate) const LEAN_PROFILE: [(&str, &str); 3] = [
    ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s"),
    ("CARGO_PROFILE_RELEASE_LTO", "fat"),
    ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1"),
];

/// Checks that `exe` is a build of the worker program: its `--help` lists `--ttl-ms`.
///
/// # Errors
/// When `exe` cannot be run, or does not describe the worker's arguments.
pub(crate) fn checked(exe: &Path) -> Result<PathBuf> {
    let answer = std::process::Command::new(exe)
        .arg("--help")
        .output()
        .with_context(|| format!("--worker-exe {}: cannot run it", exe.display()))?;
    let help = String::from_utf8_lossy(&answer.stdout);
    if !answer.status.success() || !help.contains("--ttl-ms") {
        bail!(
            "--worker-exe {}: not a build of {WORKER_BIN} (`--help` exited with {} and did \
             not list --ttl-ms){}",
            exe.display(),
            answer.status,
            match String::from_utf8_lossy(&answer.stderr).trim() {
                "" => String::new(),
                stderr => format!(": {stderr}"),
            }
        );
    }
    Ok(exe.to_path_buf())
}

/// Builds the worker program as `cargo build --release` does.
///
/// # Errors
/// When cargo cannot be run or the build fails.
pub(crate) async fn plain() -> Result<PathBuf> {
    cargo_build(&[WAITER_BIN], &[], &[]).await
}

/// Builds the lean worker into `lean-worker` under the target directory (the
/// workspace's `target`, or `CARGO_TARGET_DIR`); `Err(why)` when this host cannot make
/// one or the build fails (the bench then measures the plain build alone).
pub(crate) async fn lean() -> std::result::Result<PathBuf, String> {
    let host = host_triple().map_err(|error| format!("{error:#}"))?;
    if !host.ends_with("-linux-gnu") {
        return Err(format!(
            "the lean build links glibc in statically, so it needs a *-linux-gnu host; this \
             one is {host}"
        ));
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
            PathBuf::from,
        )
        .join("lean-worker");
    let mut env: Vec<(&str, OsString)> = vec![
        ("RUSTFLAGS", LEAN_RUSTFLAGS.into()),
        ("CARGO_TARGET_DIR", target_dir.into()),
    ];
    env.extend(
        LEAN_PROFILE
            .iter()
            .map(|(name, value)| (*name, value.into())),
    );
    cargo_build(&[], &["--target", &host], &env)
        .await
        .map_err(|error| format!("{error:#} (the lean build needs glibc's static libraries)"))
}

/// `rustc -vV`'s host triple (`$RUSTC`, else `rustc`).
fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = std::process::Command::new(&rustc)
        .arg("-vV")
        .output()
        .with_context(|| format!("running {} -vV", rustc.to_string_lossy()))?;
    if !output.status.success() {
        bail!(
            "{} -vV exited with {}",
            rustc.to_string_lossy(),
            output.status
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV named no host")
}

/// `cargo build --release --bin docket-bench-worker ARGS` with `env`, and the programs
/// `also` beside it; the worker's path from cargo's JSON messages. Cargo's progress goes
/// to standard error.
async fn cargo_build(also: &[&str], args: &[&str], env: &[(&str, OsString)]) -> Result<PathBuf> {
    // `cargo run` says which cargo it is; the bench's manifest is where it was built.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let mut command = tokio::process::Command::new(&cargo);
    // What `cargo run` set for this program is not the build's: some build scripts
    // (ring's) rerun when CARGO_MANIFEST_DIR or CARGO_PKG_NAME change, and everything
    // above them would be rebuilt, then rebuilt again by the next `cargo run`.
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_run) {
            command.env_remove(name);
        }
    }
    let output = command
        .args(["build", "--release", "--bin", WORKER_BIN])
        .args(also.iter().flat_map(|bin| ["--bin", bin]))
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .args(args)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .await
        .with_context(|| {
            format!(
                "running {} (cargo builds the worker; pass --worker-exe PATH and --no-lean \
                 to run without it)",
                cargo.to_string_lossy()
            )
        })?;
    if !output.status.success() {
        let settings: Vec<String> = env
            .iter()
            .map(|(name, value)| format!("{name}={}", value.to_string_lossy()))
            .collect();
        bail!(
            "`{} cargo build --release --bin {WORKER_BIN} {}` failed ({})",
            settings.join(" "),
            args.join(" "),
            output.status
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find_map(|message| executable_of(&message))
        .with_context(|| format!("cargo built no {WORKER_BIN} executable"))
}

/// Whether `cargo run` sets the variable `name` for the program it runs (or it would
/// override the flags of a build with its own).
fn set_by_cargo_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || matches!(
            name,
            "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "OUT_DIR"
                | "CARGO_ENCODED_RUSTFLAGS"
        )
}

/// The worker program's path in one of cargo's JSON messages, when it is its artifact.
fn executable_of(message: &Value) -> Option<PathBuf> {
    let is_worker =
        message["reason"] == "compiler-artifact" && message["target"]["name"] == WORKER_BIN;
    is_worker
        .then(|| message["executable"].as_str())
        .flatten()
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nested_build_drops_what_cargo_run_set_and_keeps_the_user_s_settings() {
        for set in [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_PKG_NAME",
            "OUT_DIR",
        ] {
            assert!(set_by_cargo_run(set), "{set}");
        }
        for kept in [
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO",
            "PATH",
            "RUSTUP_TOOLCHAIN",
        ] {
            assert!(!set_by_cargo_run(kept), "{kept}");
        }
    }

    #[test]
    fn the_worker_s_path_comes_from_its_own_artifact_message() {
        let message = |reason: &str, name: &str, executable: Value| {
            serde_json::json!({
                "reason": reason,
                "target": { "name": name },
                "executable": executable,
            })
        };
        let worker = message("compiler-artifact", WORKER_BIN, "/t/release/w".into());
        assert_eq!(executable_of(&worker), Some(PathBuf::from("/t/release/w")));
        for other in [
            message("compiler-artifact", "docket", Value::Null),
            message("compiler-artifact", "docket-bench", "/t/release/b".into()),
            message("build-finished", WORKER_BIN, "/t/release/w".into()),
        ] {
            assert_eq!(executable_of(&other), None, "{other}");
        }
    }
}
