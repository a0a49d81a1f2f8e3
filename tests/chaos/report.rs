//! The outcome of a run, as printed and written as JSON.

/// The outcome of a run, as printed and written as JSON.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Report {
    pub(crate) requested: usize,
    pub(crate) added: usize,
    pub(crate) completed: usize,
    pub(crate) lost: usize,
    pub(crate) duplicate_runs: usize,
    pub(crate) redis_restarts: u64,
    pub(crate) worker_kills: u64,
    pub(crate) failed_first_attempts: usize,
    pub(crate) elapsed_s: f64,
    pub(crate) seed: u64,
    pub(crate) chaos_ticks: u64,
    pub(crate) forced_faults: Vec<&'static str>,
    pub(crate) longest_redis_outage_ms: u64,
    pub(crate) planned_fail_first: usize,
    pub(crate) add_errors: usize,
    pub(crate) already_scheduled_on_retry: usize,
    pub(crate) unacknowledged_runs: usize,
    pub(crate) drain_s: f64,
    pub(crate) lost_keys: Vec<String>,
    pub(crate) lost_details: Vec<String>,
    pub(crate) dead_letters: Vec<String>,
    pub(crate) unexpected_worker_exits: Vec<String>,
    pub(crate) unclean_worker_stops: Vec<String>,
    pub(crate) errors: Vec<String>,
}

impl Report {
    /// Nothing lost, everything added, no fault that could not be injected.
    pub(crate) fn passed(&self) -> bool {
        self.lost == 0 && self.added >= self.requested && self.errors.is_empty()
    }

    /// Prints the report as a table, then whatever needs a closer look.
    pub(crate) fn print(&self) {
        let rows: [(&str, String); 14] = [
            ("added", format!("{} of {}", self.added, self.requested)),
            ("completed", self.completed.to_string()),
            ("lost", self.lost.to_string()),
            ("duplicate runs", self.duplicate_runs.to_string()),
            ("redis restarts", self.redis_restarts.to_string()),
            ("worker kills", self.worker_kills.to_string()),
            (
                "failed first attempts",
                self.failed_first_attempts.to_string(),
            ),
            ("planned to fail first", self.planned_fail_first.to_string()),
            ("add errors (retried)", self.add_errors.to_string()),
            (
                "already scheduled on retry",
                self.already_scheduled_on_retry.to_string(),
            ),
            (
                "longest redis outage",
                format!("{} ms", self.longest_redis_outage_ms),
            ),
            ("chaos ticks", self.chaos_ticks.to_string()),
            ("drain after chaos", format!("{:.1} s", self.drain_s)),
            ("elapsed", format!("{:.1} s", self.elapsed_s)),
        ];
        println!("\ndocket-chaos report (seed {})", self.seed);
        println!("+----------------------------+-----------------+");
        for (name, value) in rows {
            println!("| {name:<26} | {value:>15} |");
        }
        println!("+----------------------------+-----------------+");
        let lists = [
            (
                "faults forced (the draws gave none)",
                self.forced_faults.iter().map(|f| (*f).to_owned()).collect(),
            ),
            ("lost keys", self.lost_keys.clone()),
            ("lost keys in detail", self.lost_details.clone()),
            ("dead letters", self.dead_letters.clone()),
            (
                "workers that exited by themselves",
                self.unexpected_worker_exits.clone(),
            ),
            (
                "workers that did not stop cleanly",
                self.unclean_worker_stops.clone(),
            ),
            ("errors", self.errors.clone()),
        ];
        for (title, items) in lists {
            if !items.is_empty() {
                println!("{title}:");
                for item in &items {
                    println!("  {item}");
                }
            }
        }
        if self.unacknowledged_runs > 0 {
            println!(
                "runs of keys never acknowledged: {}",
                self.unacknowledged_runs
            );
        }
        println!("{}", if self.passed() { "PASS" } else { "FAIL" });
    }
}
