//! One run's bed: its directory, its `redis-server` and its worker processes, and how
//! each is started, killed and stopped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use docket::Docket;
use docket_testkit::RedisServer;
use tokio::time::Instant;

use crate::options::Options;
use crate::{DOCKET, REDIS_READY, STOP_LIMIT, WORKER_CONCURRENCY};

/// Every worker process of a run. Dropping it (a panic or an early return included)
/// SIGKILLs and reaps whatever is still there.
struct Fleet {
    workers: Vec<Option<Child>>,
    /// Per worker slot: how many times it was (re)started, naming its current process.
    incarnations: Vec<u32>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for mut child in self.workers.iter_mut().filter_map(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One run's directory, server and processes.
pub(crate) struct Bed {
    pub(crate) dir: PathBuf,
    pub(crate) port: u16,
    pub(crate) url: String,
    exe: PathBuf,
    /// The run log: one line per completed run of `chaos_work`.
    pub(crate) log: String,
    /// `redis-server` with AOF on, its data in `redis/` and its output in `redis.log`;
    /// killed when dropped.
    redis: Mutex<RedisServer>,
    fleet: Mutex<Fleet>,
}

impl Bed {
    /// Creates the run's directory, starts `redis-server` (waiting for PING) and the
    /// workers.
    pub(crate) async fn start(options: &Options, dir: &Path) -> Result<Self, String> {
        for sub in ["redis", "workers"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        }
        let log = dir.join("runs.log");
        File::create(&log).map_err(|error| format!("cannot create the run log: {error}"))?;
        let starting = RedisServer::builder()
            .append_only()
            .dir(dir.join("redis"))
            .log(dir.join("redis.log"))
            .ready_within(REDIS_READY);
        let redis = tokio::task::spawn_blocking(move || starting.try_start())
            .await
            .map_err(|error| format!("starting redis-server failed: {error}"))?
            .map_err(|error| error.to_string())?;
        let bed = Self {
            dir: dir.to_owned(),
            port: redis.port(),
            url: redis.url(),
            exe: std::env::current_exe()
                .map_err(|error| format!("cannot find this executable: {error}"))?,
            log: log.to_string_lossy().into_owned(),
            redis: Mutex::new(redis),
            fleet: Mutex::new(Fleet {
                workers: Vec::new(),
                incarnations: vec![0; options.workers],
            }),
        };
        for slot in 0..options.workers {
            let worker = bed.start_worker(slot, 0)?;
            bed.lock().workers.push(Some(worker));
        }
        Ok(bed)
    }

    /// The processes, whoever held the lock before.
    fn lock(&self) -> MutexGuard<'_, Fleet> {
        self.fleet.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The server, whoever held the lock before.
    fn lock_redis(&self) -> MutexGuard<'_, RedisServer> {
        self.redis.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// SIGKILLs `redis-server`, starts it again on the same port and data directory, and
    /// waits for PING. Returns how long the server was unreachable.
    pub(crate) async fn restart_redis(self: Arc<Self>) -> Result<Duration, String> {
        let down = Instant::now();
        tokio::task::spawn_blocking(move || self.lock_redis().try_restart())
            .await
            .map_err(|error| format!("the Redis restart failed: {error}"))?
            .map_err(|error| error.to_string())?;
        Ok(down.elapsed())
    }

    /// Spawns the worker process of `slot` (this executable, `worker`), configured through
    /// the `DOCKET_*` variables only, its output in its own log file.
    fn start_worker(&self, slot: usize, incarnation: u32) -> Result<Child, String> {
        let name = worker_name(slot, incarnation);
        let path = self.dir.join("workers").join(format!("{name}.log"));
        let output = File::create(&path)
            .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
        let errors = output
            .try_clone()
            .map_err(|error| format!("cannot open {}: {error}", path.display()))?;
        Command::new(&self.exe)
            .arg("worker")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DOCKET_URL", &self.url)
            .env("DOCKET_NAME", DOCKET)
            .env("DOCKET_WORKER_NAME", &name)
            .env("DOCKET_WORKER_CONCURRENCY", WORKER_CONCURRENCY)
            .env("DOCKET_WORKER_REDELIVERY_TIMEOUT", "2s")
            .env("DOCKET_WORKER_RECONNECTION_DELAY", "100ms")
            .env("DOCKET_WORKER_MINIMUM_CHECK_INTERVAL", "50ms")
            .env("DOCKET_WORKER_SCHEDULING_RESOLUTION", "50ms")
            .env("DOCKET_WORKER_DRAIN_TIMEOUT", "5s")
            .env("DOCKET_WORKER_SCHEDULE_AUTOMATIC_TASKS", "false")
            .env("DOCKET_LOGGING_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .spawn()
            .map_err(|error| format!("cannot start worker {name}: {error}"))
    }

    /// SIGKILLs the worker of `slot` and starts its next incarnation; returns the names
    /// of the killed and the new process.
    pub(crate) fn kill_worker(&self, slot: usize) -> Result<(String, String), String> {
        let mut fleet = self.lock();
        let killed = worker_name(slot, fleet.incarnations[slot]);
        if let Some(mut child) = fleet.workers[slot].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        fleet.incarnations[slot] += 1;
        let incarnation = fleet.incarnations[slot];
        fleet.workers[slot] = Some(self.start_worker(slot, incarnation)?);
        Ok((killed, worker_name(slot, incarnation)))
    }

    /// Starts again every worker that exited although nobody killed it; returns what
    /// each one exited with.
    pub(crate) fn respawn_exited(&self) -> Result<Vec<String>, String> {
        let mut fleet = self.lock();
        let mut exits = Vec::new();
        for slot in 0..fleet.workers.len() {
            let Some(Ok(Some(status))) = fleet.workers[slot].as_mut().map(Child::try_wait) else {
                continue;
            };
            exits.push(format!(
                "{} exited by itself ({status})",
                worker_name(slot, fleet.incarnations[slot])
            ));
            fleet.incarnations[slot] += 1;
            let incarnation = fleet.incarnations[slot];
            fleet.workers[slot] = Some(self.start_worker(slot, incarnation)?);
        }
        Ok(exits)
    }

    /// Sends every worker SIGTERM and waits (bounded) for them to drain and exit; the
    /// ones still there are killed. Returns the workers that did not exit with 0.
    pub(crate) async fn stop_workers(&self) -> Vec<String> {
        for child in self.lock().workers.iter().flatten() {
            let _ = docket_testkit::signal(child.id(), "TERM");
        }
        let deadline = Instant::now() + STOP_LIMIT;
        loop {
            let running = self
                .lock()
                .workers
                .iter_mut()
                .flatten()
                .filter_map(|child| child.try_wait().ok())
                .filter(Option::is_none)
                .count();
            if running == 0 || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut fleet = self.lock();
        let mut unclean = Vec::new();
        for slot in 0..fleet.workers.len() {
            let name = worker_name(slot, fleet.incarnations[slot]);
            let Some(mut child) = fleet.workers[slot].take() else {
                continue;
            };
            match child.try_wait() {
                Ok(Some(status)) if status.success() => {}
                Ok(Some(status)) => unclean.push(format!("{name} exited with {status} on SIGTERM")),
                _ => unclean.push(format!(
                    "{name} was still running {STOP_LIMIT:?} after SIGTERM"
                )),
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        unclean
    }

    /// SIGKILLs `redis-server`.
    pub(crate) fn stop_redis(&self) {
        self.lock_redis().kill();
    }
}

/// The name of the `incarnation`-th process of worker `slot`.
fn worker_name(slot: usize, incarnation: u32) -> String {
    format!("chaos-w{slot}-{incarnation}")
}

/// Connects a docket handle, trying again for a while should Redis be restarting.
pub(crate) async fn connect(url: &str) -> Result<Docket, String> {
    let deadline = Instant::now() + REDIS_READY;
    loop {
        let connecting = Docket::builder(DOCKET, url).connect();
        match tokio::time::timeout(Duration::from_secs(5), connecting).await {
            Ok(Ok(docket)) => return Ok(docket),
            Ok(Err(error)) if Instant::now() >= deadline => {
                return Err(format!("cannot connect to the docket: {error}"));
            }
            Err(_) if Instant::now() >= deadline => {
                return Err("connecting to the docket timed out".to_owned());
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
