//! [`MemoryResultStore`]: results in this process, each until its TTL passes.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::ResultStore;
use crate::backend::BoxError;

/// Keeps results in this process's memory, each until its TTL passes. For tests, and
/// for a docket whose producers and workers share one process.
///
/// ```
/// # async fn connect() -> docket::Result<()> {
/// let docket = docket::Docket::builder("reports", "memory://reports")
///     .result_store(docket::MemoryResultStore::new())
///     .connect()
///     .await?;
/// # let _ = docket; Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct MemoryResultStore {
    values: Mutex<HashMap<String, (String, Instant)>>,
}

impl MemoryResultStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn values(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.values.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ResultStore for MemoryResultStore {
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), BoxError> {
        let now = Instant::now();
        let mut values = self.values();
        // Expired values go whenever one is put, so the map holds live ones only.
        values.retain(|_, (_, expires)| *expires > now);
        values.insert(key.to_owned(), (value.to_owned(), now + ttl));
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<String>, BoxError> {
        let now = Instant::now();
        Ok(self
            .values()
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.clone()))
    }

    async fn delete(&self, key: &str) -> Result<(), BoxError> {
        self.values().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_value_is_kept_until_its_ttl_passes() {
        let store = MemoryResultStore::new();
        store
            .put("kept", "42", Duration::from_mins(1))
            .await
            .unwrap();
        store
            .put("brief", "7", Duration::from_millis(1))
            .await
            .unwrap();
        // Any wait past a millisecond outlives the brief one.
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(store.get("kept").await.unwrap().as_deref(), Some("42"));
        assert_eq!(store.get("brief").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_deleted_value_is_gone() {
        let store = MemoryResultStore::new();
        store.put("k", "1", Duration::from_secs(10)).await.unwrap();
        store.delete("k").await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), None);
    }
}
