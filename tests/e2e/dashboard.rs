//! The web dashboard as an operator uses it: a headless Chromium signed in to a dashboard
//! served in-process, on a `redis-server` of each test's own. Lists and progress bars
//! that follow the docket live, actions from a run's page and in bulk, search, values
//! shown as text, and the screenshots in `docs/images/`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use docket::dashboard::Dashboard;
use docket::worker::ShutdownHandle;
use docket::{Call, Docket, ExecutionState, FromWorker, Listing, Progress, Retry, Shared, Worker};
use docket_testkit::{Browser, Deadline, try_wait_for};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::support::{RedisServer, free_port, record_of, test_worker, unique, wait_for};

/// The token that lets the browser act.
const TOKEN: &str = "the dashboard token of the tests";

/// How long anything awaited may take on a loaded machine.
const WITHIN: Duration = Duration::from_secs(30);

/// How often a wait on the browser looks again (each look is a `WebDriver` command).
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// A call that does nothing with its text: something to list, search and show.
#[docket::task]
pub async fn dashboard_note(text: String) {
    let _ = text;
}

/// A call no worker of these tests serves, to be dead-lettered.
#[docket::task]
pub async fn dashboard_unserved(n: u64) -> u64 {
    n
}

/// The permits `dashboard_steps` waits for: one per step, and one to finish.
pub struct Steps(Arc<Semaphore>);

impl FromWorker for Steps {}

/// Sets a total of `total` units, then does one unit per permit the test gives, and
/// ends on one more.
#[docket::task]
pub async fn dashboard_steps(
    total: u64,
    progress: Progress,
    steps: Shared<Steps>,
) -> Result<u64, String> {
    let step = || async {
        steps
            .0
            .acquire()
            .await
            .map(tokio::sync::SemaphorePermit::forget)
            .map_err(|error| error.to_string())
    };
    progress
        .set_total(total)
        .await
        .map_err(|error| error.to_string())?;
    for _ in 0..total {
        step().await?;
        progress
            .increment(1)
            .await
            .map_err(|error| error.to_string())?;
    }
    step().await?;
    Ok(total)
}

/// Work for the overview's chart: `millis` of it. With `fails`, the first attempt fails
/// (and, for an odd `n`, the second too), for the chart's retried and failed runs.
#[docket::task(retry = Fixed(2, 100ms))]
pub async fn dashboard_work(n: u64, millis: u64, fails: bool, retry: Retry) -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    if fails && (retry.attempt() == 1 || n % 2 == 1) {
        return Err(format!("call {n} failed on attempt {}", retry.attempt()));
    }
    Ok(n)
}

/// A worker running in the background.
struct Running(ShutdownHandle, JoinHandle<docket::Result<()>>);

fn start(worker: Worker) -> Running {
    let handle = worker.shutdown_handle();
    Running(
        handle,
        tokio::spawn(async move { worker.run_forever().await }),
    )
}

async fn stop(worker: Running) -> Result<()> {
    worker.0.shutdown();
    worker.1.await??;
    Ok(())
}

/// The selector of a task's row.
fn row(key: &str) -> String {
    format!("tr[data-key=\"{key}\"]")
}

/// A dashboard served in-process on a `redis-server` of the test's own, and a browser
/// signed in to it.
struct Bed {
    browser: Browser,
    /// The test's handle on the docket (the dashboard has its own).
    docket: Docket,
    /// The dashboard's address, ending in `/`.
    base: String,
    serving: JoinHandle<docket::Result<()>>,
    /// Killed on drop.
    _redis: RedisServer,
}

impl Drop for Bed {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

impl Bed {
    async fn start() -> Result<Self> {
        Self::named(unique("dashboard")).await
    }

    async fn named(name: String) -> Result<Self> {
        let redis = RedisServer::start();
        let docket = Docket::connect(name.clone(), redis.url()).await?;
        // The dashboard reads through a handle of its own, as in a process of its own.
        let watched = Docket::connect(name, redis.url()).await?;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let serving = tokio::spawn(
            Dashboard::new(watched)
                .auth_token(TOKEN)
                .serve(address, std::future::pending()),
        );
        wait_for(WITHIN, "the dashboard to listen", || async move {
            tokio::net::TcpStream::connect(address).await.map(drop)
        })
        .await;
        let bed = Self {
            browser: Browser::start().await?,
            docket,
            base: format!("http://{address}/"),
            serving,
            _redis: redis,
        };
        bed.sign_in().await?;
        Ok(bed)
    }

    /// Signs in through the login form, as an operator does.
    async fn sign_in(&self) -> Result<()> {
        self.open("login").await?;
        self.browser
            .find("form.login input[name=token]")
            .await?
            .send_keys(TOKEN)
            .await?;
        self.click("form.login button[type=submit]").await?;
        self.browser
            .wait_for("form[action=logout]", WITHIN)
            .await
            .context("signed in")?;
        Ok(())
    }

    /// Opens a page of the dashboard (`path` relative to its root).
    async fn open(&self, path: &str) -> Result<()> {
        Ok(self.browser.goto(&format!("{}{path}", self.base)).await?)
    }

    /// Clicks the first element matching `css` once there is one; again when a live
    /// refresh replaced it between the finding and the click.
    async fn click(&self, css: &str) -> Result<()> {
        let deadline = Deadline::after(WITHIN, format!("a click on `{css}`"));
        loop {
            let element = self.browser.wait_for(css, WITHIN).await?;
            match element.click().await {
                Ok(()) => return Ok(()),
                Err(error) if error.webdriver_error() == Some("stale element reference") => {
                    deadline.try_check(&error.to_string())?;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The text of the first element matching `css`, once there is one.
    async fn text_of(&self, css: &str) -> Result<String> {
        let deadline = Deadline::after(WITHIN, format!("the text of `{css}`"));
        loop {
            let element = self.browser.wait_for(css, WITHIN).await?;
            match element.text().await {
                Ok(text) => return Ok(text),
                Err(error) if error.webdriver_error() == Some("stale element reference") => {
                    deadline.try_check(&error.to_string())?;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Marks the document shown, for [`Bed::same_document`]: a reload or another page
    /// loses the mark; a live refresh, which swaps the page's `<main>`, keeps it.
    async fn mark_document(&self) -> Result<()> {
        self.browser
            .execute("window.docketTestMark = true; return null;", &[])
            .await?;
        Ok(())
    }

    async fn same_document(&self) -> Result<bool> {
        let marked = self
            .browser
            .execute("return window.docketTestMark === true;", &[])
            .await?;
        Ok(marked.as_bool() == Some(true))
    }

    /// The `value` attribute of the progress bar shown, if there is one.
    async fn progress_shown(&self) -> Result<Option<u64>> {
        let value = self
            .browser
            .execute(
                "var bar = document.getElementById('progress'); \
                 return bar ? bar.getAttribute('value') : null;",
                &[],
            )
            .await?;
        Ok(value.as_str().and_then(|text| text.parse().ok()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_added_appears_on_the_queued_list_without_a_reload() -> Result<()> {
    let bed = Bed::start().await?;
    bed.open("tasks?list=queued").await?;
    bed.browser.wait_for("p.empty", WITHIN).await?;
    bed.mark_document().await?;

    let key = unique("queued");
    bed.docket
        .add(DashboardNote::new("a new call".into()))
        .key(&key)
        .await?;
    bed.browser.wait_for(&row(&key), WITHIN).await?;
    let text = bed.text_of(&row(&key)).await?;
    ensure!(text.contains("dashboard_note"), "{text}");
    ensure!(text.contains("a new call"), "{text}");
    ensure!(bed.same_document().await?, "the page was loaded again");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_tasks_progress_bar_moves_without_a_reload() -> Result<()> {
    const TOTAL: u64 = 4;
    let bed = Bed::start().await?;
    let steps = Arc::new(Semaphore::new(0));
    let worker = start(
        test_worker(&bed.docket)
            .shared(Steps(steps.clone()))
            .build()?,
    );
    let key = unique("progress");
    let execution = bed.docket.add(DashboardSteps::new(TOTAL)).key(&key).await?;
    wait_for(WITHIN, "the task to set its total", || async {
        match execution.progress().await {
            Ok(Some(progress)) if progress.total == Some(TOTAL) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    bed.open(&format!("run?key={key}")).await?;
    bed.browser.wait_for("h1 .state-running", WITHIN).await?;
    ensure!(bed.progress_shown().await? == Some(0), "no bar at 0");
    bed.mark_document().await?;
    // A step taken before the page's stream subscribed is not lost: a new subscription
    // hears the progress as it stands first.
    for step in 1..=TOTAL {
        steps.add_permits(1);
        let deadline = Deadline::after(WITHIN, format!("the bar at {step} of {TOTAL}"));
        try_wait_for(&deadline, LOOK_EVERY, || async {
            match bed.progress_shown().await {
                Ok(Some(shown)) if shown == step => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await?;
    }
    let text = bed.text_of("span.progress-text").await?;
    ensure!(text == format!("{TOTAL} of {TOTAL}"), "{text}");
    ensure!(bed.same_document().await?, "the page was loaded again");

    steps.add_permits(1);
    bed.browser.wait_for("h1 .state-completed", WITHIN).await?;
    ensure!(bed.same_document().await?, "the page was loaded again");
    stop(worker).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicking_cancel_on_a_scheduled_tasks_run_page_ends_it_cancelled() -> Result<()> {
    let bed = Bed::start().await?;
    let key = unique("scheduled");
    bed.docket
        .add(DashboardNote::new("due in an hour".into()))
        .key(&key)
        .after(Duration::from_hours(1))
        .await?;
    bed.open(&format!("run?key={key}")).await?;
    bed.browser.wait_for("h1 .state-scheduled", WITHIN).await?;

    bed.click("form[action='actions/cancel'] button").await?;
    bed.browser.wait_for("h1 .state-cancelled", WITHIN).await?;
    let record = record_of(&bed.docket, &key).await;
    ensure!(
        record.state == ExecutionState::Cancelled,
        "{:?}",
        record.state
    );
    let counts = bed.docket.counts().await?;
    ensure!(counts.scheduled == 0, "{counts:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_retry_of_fifty_dead_letters_adds_the_fifty_again() -> Result<()> {
    const LETTERS: u64 = 50;
    let bed = Bed::start().await?;
    let keys: Vec<String> = (0..LETTERS).map(|n| format!("letter-{n:02}")).collect();
    // A worker that serves another task hands these calls back; once the grace period
    // passes with no worker serving theirs, they are dead-lettered.
    let worker = start(
        test_worker(&bed.docket)
            .tasks(["dashboard_note"])
            .heartbeat_interval(Duration::from_millis(100))
            .unserved_grace(Duration::from_millis(300))
            .build()?,
    );
    let calls =
        (0..LETTERS).map(|n| Call::from(DashboardUnserved::new(n)).key(format!("letter-{n:02}")));
    bed.docket.add_many(calls).await?;
    wait_for(WITHIN, "fifty dead letters", || async {
        match bed.docket.dead_letters().await {
            Ok(letters) if letters.len() == keys.len() => Ok(()),
            other => Err(other.map(|letters| letters.len())),
        }
    })
    .await;
    stop(worker).await?;

    bed.open("dead-letters").await?;
    bed.browser
        .wait_until_text("h1 .count", "50", WITHIN)
        .await?;
    let rows = bed.browser.find_all("tbody tr[data-key]").await?;
    ensure!(rows.len() == keys.len(), "{} rows", rows.len());
    bed.click("form.bulk:has(input[name=scope][value=filter]) button[value=retry]")
        .await?;
    let asked = bed.text_of("strong.confirm-count").await?;
    ensure!(asked == "50", "the confirmation names {asked}");
    bed.click("form.bulk button.danger").await?;
    let done = bed.text_of("strong.done-count").await?;
    ensure!(done == "50", "done for {done}");

    let letters = bed.docket.dead_letters().await?;
    ensure!(letters.is_empty(), "{letters:?}");
    let queued = bed.docket.page(Listing::Queued, None, 100).await?;
    let mut listed: Vec<String> = queued
        .records
        .iter()
        .map(|record| record.message.key.clone())
        .collect();
    listed.sort();
    ensure!(listed == keys, "queued: {listed:?}");
    for key in &keys {
        let record = record_of(&bed.docket, key).await;
        ensure!(
            record.state == ExecutionState::Queued,
            "{key}: {:?}",
            record.state
        );
        ensure!(record.message.function == "dashboard_unserved", "{key}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searching_an_argument_value_finds_the_run() -> Result<()> {
    let bed = Bed::start().await?;
    let needle = unique("needle");
    let key = unique("found");
    let other = unique("other");
    bed.docket
        .add(DashboardNote::new(format!("an order for {needle}")))
        .key(&key)
        .await?;
    bed.docket
        .add(DashboardNote::new("an order for someone else".into()))
        .key(&other)
        .await?;

    bed.open("").await?;
    let search = bed.browser.find("form.search input[name=q]").await?;
    search.send_keys(&needle).await?;
    // Enter submits the form.
    search.send_keys("\u{E007}").await?;
    bed.browser.wait_for(&row(&key), WITHIN).await?;
    let url = bed.browser.current_url().await?;
    ensure!(url.contains("search?q="), "{url}");
    let found = bed.text_of("p.scan").await?;
    ensure!(found.starts_with("1 live task"), "{found}");
    ensure!(
        bed.browser.find_all(&row(&other)).await?.is_empty(),
        "{other} is listed too"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_in_an_argument_is_shown_as_text_and_never_run() -> Result<()> {
    const SCRIPT: &str = "<script>alert(1)</script>";
    let bed = Bed::start().await?;
    let key = unique("script");
    bed.docket
        .add(DashboardNote::new(SCRIPT.into()))
        .key(&key)
        .await?;

    bed.open("tasks?list=queued").await?;
    let shown = bed.text_of(&format!("{} code.args", row(&key))).await?;
    ensure!(bed.browser.alert_text().await?.is_none(), "a dialog opened");
    ensure!(shown.contains(SCRIPT), "{shown}");
    ensure!(
        bed.browser.find_all("main script").await?.is_empty(),
        "a script element in the list"
    );

    bed.click(&format!("{} a.key", row(&key))).await?;
    bed.browser.wait_for("h1 span.key", WITHIN).await?;
    ensure!(bed.browser.alert_text().await?.is_none(), "a dialog opened");
    let arguments = bed.text_of("pre.json").await?;
    ensure!(arguments.contains(SCRIPT), "{arguments}");
    ensure!(
        bed.browser.find_all("main script").await?.is_empty(),
        "a script element on the run page"
    );
    ensure!(bed.browser.alert_text().await?.is_none(), "a dialog opened");
    Ok(())
}

/// How many of the chart's intervals had runs end.
async fn intervals_with_runs(docket: &Docket) -> Result<usize> {
    let now = docket.now().await?;
    let since = now
        .checked_sub(Duration::from_mins(10))
        .context("a clock past 1970")?;
    Ok(docket
        .activity(since)
        .await?
        .iter()
        .filter(|interval| {
            let ended = interval.activity;
            ended.succeeded + ended.failed + ended.retried > 0
        })
        .count())
}

/// Where a screenshot goes: `docs/images/` with `DOCKET_WRITE_SCREENSHOT=1`, else a
/// temporary file (and whether it is one).
fn screenshot_path(file: &str) -> Result<(PathBuf, bool)> {
    if std::env::var("DOCKET_WRITE_SCREENSHOT").is_ok_and(|value| value == "1") {
        let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/images");
        std::fs::create_dir_all(&images)?;
        Ok((images.join(file), false))
    } else {
        let name = format!("{}-{file}", unique("dashboard"));
        Ok((std::env::temp_dir().join(name), true))
    }
}

/// Takes a screenshot of the page shown into `file`, checks it is a PNG `width` pixels
/// wide, and removes it when it is only a temporary file.
async fn screenshot(bed: &Bed, file: &str, width: u32) -> Result<()> {
    let (path, temporary) = screenshot_path(file)?;
    bed.browser.screenshot_png(&path).await?;
    let png = std::fs::read(&path)?;
    if temporary {
        std::fs::remove_file(&path)?;
    }
    ensure!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.get(12..16) == Some(b"IHDR".as_slice()),
        "`{}` is not a PNG",
        path.display()
    );
    let shown = u32::from_be_bytes(png.get(16..20).context("a PNG header")?.try_into()?);
    ensure!(
        shown == width,
        "`{}` is {shown} pixels wide",
        path.display()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_with_runs_ending_is_screenshotted_at_desktop_and_phone_widths() -> Result<()>
{
    const BARS: usize = 3;
    // A name for the docs' picture, on a server of this test's own.
    let bed = Bed::named("orders".to_owned()).await?;
    let worker = start(
        test_worker(&bed.docket)
            .concurrency(4)
            .heartbeat_interval(Duration::from_millis(200))
            .build()?,
    );
    for hour in 1..=12 {
        bed.docket
            .add(DashboardNote::new(format!("reminder {hour}")))
            .after(Duration::from_hours(hour))
            .await?;
    }
    let scheduled = bed.docket.counts().await?.scheduled;
    // Batches of different sizes, each run to its end, until runs ended in several of
    // the chart's intervals.
    let deadline = Deadline::after(Duration::from_mins(2), "runs ending in three intervals");
    let mut batch = 0;
    loop {
        let bars = intervals_with_runs(&bed.docket).await?;
        if bars >= BARS {
            break;
        }
        deadline.try_check(&format!("{bars} intervals with runs"))?;
        let size = 6 + (batch * 7) % 23;
        let calls = (0..size).map(|i| {
            let n = batch * 100 + i;
            Call::from(DashboardWork::new(n, 20 + (n * 37) % 120, n % 9 == 0))
        });
        bed.docket.add_many(calls).await?;
        wait_for(WITHIN, "the batch to be run", || async {
            match bed.docket.counts().await {
                Ok(counts)
                    if counts.queued == 0
                        && counts.running == 0
                        && counts.scheduled == scheduled =>
                {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        batch += 1;
    }
    // Some running and some waiting while the picture is taken.
    let calls = (0..40).map(|n| Call::from(DashboardWork::new(10_000 + n, 600, false)));
    bed.docket.add_many(calls).await?;

    bed.browser.set_window_size(1280, 900).await?;
    bed.open("").await?;
    let deadline = Deadline::after(WITHIN, "the chart's bars");
    try_wait_for(&deadline, LOOK_EVERY, || async {
        match bed.browser.find_all("svg.chart rect").await {
            Ok(bars) if bars.len() >= BARS => Ok(()),
            other => Err(other
                .map(|bars| bars.len())
                .map_err(|error| error.to_string())),
        }
    })
    .await?;
    screenshot(&bed, "dashboard.png", 1280).await?;

    bed.browser.set_window_size(390, 844).await?;
    bed.open("").await?;
    bed.browser.wait_for("svg.chart rect", WITHIN).await?;
    screenshot(&bed, "dashboard-phone.png", 390).await?;
    stop(worker).await
}
