//! A result store of your own: large results kept as files in a directory, not in
//! Redis. The docket's records say only that a result exists; `result()` reads the
//! file back.
//!
//! ```sh
//! cargo run --example file_results     # memory://; DOCKET_URL=redis://... for Redis
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use docket::{BoxError, Docket, ResultStore, Worker};

/// Keeps each result in a file of `directory`: its first line says when it expires (ms
/// since the epoch), the rest is the result's JSON.
struct FileResultStore {
    directory: PathBuf,
}

impl FileResultStore {
    fn new(directory: impl Into<PathBuf>) -> std::io::Result<Self> {
        let directory = directory.into();
        std::fs::create_dir_all(&directory)?;
        Ok(Self { directory })
    }

    /// The file of `key`: its bytes in hex, so that any key is a safe file name.
    fn path(&self, key: &str) -> PathBuf {
        use std::fmt::Write;
        let name = key.bytes().fold(String::new(), |mut name, byte| {
            let _ = write!(name, "{byte:02x}");
            name
        });
        self.directory.join(name)
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

/// The file's result, or `None` when there is none or it expired (and is then removed).
fn read_live(path: &Path) -> Result<Option<String>, BoxError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let (expires, value) = text
        .split_once('\n')
        .ok_or("a result file without its expiry")?;
    if expires.parse::<u128>()? <= now_ms() {
        let _ = std::fs::remove_file(path);
        return Ok(None);
    }
    Ok(Some(value.to_owned()))
}

// Files are read and written on the blocking pool, off the runtime's threads.
impl ResultStore for FileResultStore {
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), BoxError> {
        let (path, text) = (
            self.path(key),
            format!("{}\n{value}", now_ms() + ttl.as_millis()),
        );
        tokio::task::spawn_blocking(move || std::fs::write(path, text)).await??;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<String>, BoxError> {
        let path = self.path(key);
        tokio::task::spawn_blocking(move || read_live(&path)).await?
    }

    async fn delete(&self, key: &str) -> Result<(), BoxError> {
        let path = self.path(key);
        match tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await? {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
            _ => Ok(()),
        }
    }
}

/// Renders a report too large to keep comfortably in Redis.
#[docket::task]
async fn render_report(rows: usize) -> Vec<String> {
    (1..=rows)
        .map(|row| format!("row {row}: all good"))
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DOCKET_URL").unwrap_or_else(|_| "memory://file-results".into());
    let directory = std::env::temp_dir().join("docket-file-results");
    let docket = Docket::builder("file-results-example", url)
        .result_store(FileResultStore::new(&directory)?)
        .max_result_size(64 * 1024 * 1024)
        .connect()
        .await?;

    let report = docket.add(RenderReport::new(10_000)).await?;
    Worker::builder(docket.clone())
        .build()?
        .run_until_finished()
        .await?;

    let rows = report.result().await?;
    println!(
        "{} rows, kept in {}; the last: {}",
        rows.len(),
        directory.display(),
        rows.last().map_or("none", String::as_str)
    );
    Ok(())
}
