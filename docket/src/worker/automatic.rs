//! Seeding automatic tasks: every worker, at startup and then periodically, schedules
//! each automatic perpetual or cron task it runs under the task's name as key. `add`
//! leaves a live key alone, so a chain that is running, queued or scheduled is never
//! doubled; a per-task lease keeps a fleet of workers from all doing it at once. A task
//! struck as a whole is not seeded while the strike lasts.

use std::time::{Duration, SystemTime};

use crate::backend::NewTask;
use crate::behaviors::cron;
use crate::client::Docket;
use crate::error::Result;
use crate::model::{Disposition, Message, Schedule, When};
use crate::task::registry::TaskRegistration;

/// Seeds the automatic tasks among `tasks` whose lease this worker wins for `every`.
/// Returns the keys it scheduled (not those already live).
pub(crate) async fn seed_automatic(
    docket: &Docket,
    worker: &str,
    tasks: &[&'static TaskRegistration],
    every: Duration,
) -> Result<Vec<&'static str>> {
    let backend = docket.backend();
    let mut calls = Vec::new();
    let mut names = Vec::new();
    let mut now: Option<SystemTime> = None;
    for task in tasks {
        let options = task.options();
        let Some(schedule) = options.schedule.filter(|_| options.automatic) else {
            continue;
        };
        // Seeding it would only have each run refused when claimed.
        if docket.blocking_strike(task.name(), "{}").is_some() {
            continue;
        }
        if !backend
            .try_lock(&format!("seed:{}", task.name()), worker, every)
            .await?
        {
            continue;
        }
        let due = match schedule {
            Schedule::Every(_) => When::Now,
            Schedule::Cron {
                expression,
                time_zone,
            } => {
                let from = match now {
                    Some(now) => now,
                    None => *now.insert(backend.now().await?),
                };
                match cron::next_after(expression, time_zone, from) {
                    Ok(when) => When::At(when),
                    Err(error) => {
                        tracing::error!(task = task.name(), %error, "cannot seed a cron task");
                        continue;
                    }
                }
            }
        };
        let message = Message::unplaced(
            task.name().to_owned(),
            task.name().to_owned(),
            "{}".to_owned(),
            1,
        );
        calls.push(NewTask {
            message,
            due,
            replace: false,
            fresh: false,
        });
        names.push(task.name());
    }
    if calls.is_empty() {
        return Ok(Vec::new());
    }
    let outcomes = backend.schedule(&calls).await?;
    Ok(names
        .into_iter()
        .zip(outcomes)
        .filter(|(_, outcome)| outcome.disposition == Disposition::Scheduled)
        .map(|(name, _)| name)
        .collect())
}
