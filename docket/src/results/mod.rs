//! Where results are kept: by default in the docket's own backend, written with the
//! run's end in one atomic step; or in a [`ResultStore`] of your choosing, set with
//! [`DocketBuilder::result_store`](crate::DocketBuilder::result_store).
//!
//! A result is JSON text. A worker whose handle has a store puts each result there
//! before it records the run's end, under a key derived from the docket name, the task
//! key and the generation, for as long as the call's `execution_ttl`; the run's end
//! then records only that the result lives in the store, and
//! [`Execution::result`](crate::Execution::result) reads it back through the store.
//! Producers and workers of one docket must therefore be configured with the same
//! store.

mod memory;
mod redis;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use self::memory::MemoryResultStore;
pub use self::redis::RedisResultStore;
use crate::backend::{Backend, BoxError, BoxFuture, Output};
use crate::error::{Error, Result as DocketResult};
use crate::model::{TaskError, TaskErrorKind};

/// A place to keep task results: JSON text under a key, for a while.
///
/// Implement it with plain `async fn`s and set it with
/// [`DocketBuilder::result_store`](crate::DocketBuilder::result_store). docket ships
/// [`MemoryResultStore`] (in-process) and [`RedisResultStore`] (another Redis URL or
/// database). Values are JSON text; a store keeps each for the TTL it is given (the
/// call's `execution_ttl`).
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use std::time::Duration;
/// use docket::{BoxError, ResultStore};
///
/// /// Keeps results in a map, forever (a real store honours `ttl`).
/// #[derive(Default)]
/// struct MapStore(Mutex<HashMap<String, String>>);
///
/// impl ResultStore for MapStore {
///     async fn put(&self, key: &str, value: &str, _ttl: Duration) -> Result<(), BoxError> {
///         self.0.lock().unwrap().insert(key.to_owned(), value.to_owned());
///         Ok(())
///     }
///
///     async fn get(&self, key: &str) -> Result<Option<String>, BoxError> {
///         Ok(self.0.lock().unwrap().get(key).cloned())
///     }
///
///     async fn delete(&self, key: &str) -> Result<(), BoxError> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
/// }
///
/// # async fn connect() -> docket::Result<()> {
/// let docket = docket::Docket::builder("orders", "memory://orders")
///     .result_store(MapStore::default())
///     .connect()
///     .await?;
/// # let _ = docket; Ok(()) }
/// ```
pub trait ResultStore: Send + Sync + 'static {
    /// Keeps `value` under `key` for `ttl`, replacing whatever was there.
    ///
    /// # Errors
    /// Whatever kept the store from keeping it. The run whose result it is then ends
    /// FAILED with an error naming this one.
    fn put(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// The value under `key`, or `None` when there is none (never put, or expired).
    ///
    /// # Errors
    /// Whatever kept the store from answering; `result()` returns it as
    /// [`Error::ResultStore`](crate::Error::ResultStore).
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, BoxError>> + Send;

    /// Removes the value under `key`, if any. docket itself lets results expire; this is
    /// for the tools and tests that clean up after themselves.
    ///
    /// # Errors
    /// Whatever kept the store from removing it.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// A shared store is a store: keep an `Arc` of it to look into it yourself.
impl<S: ResultStore> ResultStore for Arc<S> {
    fn put(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        S::put(self, key, value, ttl)
    }

    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, BoxError>> + Send {
        S::get(self, key)
    }

    fn delete(&self, key: &str) -> impl Future<Output = Result<(), BoxError>> + Send {
        S::delete(self, key)
    }
}

/// A [`ResultStore`] behind a pointer: its futures boxed, which a trait with
/// `async fn`s cannot be by itself.
pub(crate) trait ErasedResultStore: Send + Sync {
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BoxError>>;
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, BoxError>>;
}

impl<S: ResultStore> ErasedResultStore for S {
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(ResultStore::put(self, key, value, ttl))
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, BoxError>> {
        Box::pin(ResultStore::get(self, key))
    }
}

/// How a docket handle keeps results: the store results go to (none: the docket's own
/// backend) and the largest result a run may return.
#[derive(Clone, Default)]
pub(crate) struct ResultSettings {
    pub store: Option<Arc<dyn ErasedResultStore>>,
    pub max_size: Option<usize>,
}

impl fmt::Debug for ResultSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResultSettings")
            .field("store", &self.store.as_ref().map(|_| "custom"))
            .field("max_size", &self.max_size)
            .finish()
    }
}

impl ResultSettings {
    /// Whether a result of `size` bytes may be kept.
    ///
    /// # Errors
    /// The failure a run ends with when its result is over the limit.
    pub(crate) fn check_size(&self, size: usize) -> Result<(), TaskError> {
        match self.max_size {
            Some(limit) if size > limit => Err(TaskError::new(
                TaskErrorKind::Failed,
                format!(
                    "the result is {size} bytes, over the limit of {limit} bytes \
                     (`max_result_size`)"
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// Puts the result of a run (generation `generation` of `key`) in `store` for `ttl`,
/// and says what the run's end records of it: that it is in the store.
///
/// # Errors
/// The failure the run ends with when the store could not keep it.
pub(crate) async fn put(
    store: &dyn ErasedResultStore,
    docket: &str,
    key: &str,
    generation: u64,
    value: &str,
    ttl: Duration,
) -> Result<Output, TaskError> {
    let stored = store_key(docket, key, generation);
    match store.put(&stored, value, ttl).await {
        Ok(()) => Ok(Output::InStore(stored)),
        Err(error) => Err(TaskError::new(
            TaskErrorKind::Failed,
            format!("the result store could not keep the result: {error}"),
        )),
    }
}

impl ResultSettings {
    /// The stored result of generation `generation` of `key`, read through the result
    /// store, or else the docket's own `backend`.
    ///
    /// # Errors
    /// [`Error::ResultStore`] naming the store's error, or the backend's error.
    pub(crate) async fn get(
        &self,
        backend: &dyn Backend,
        docket: &str,
        key: &str,
        generation: u64,
    ) -> DocketResult<Option<String>> {
        match &self.store {
            Some(store) => store
                .get(&store_key(docket, key, generation))
                .await
                .map_err(|source| Error::ResultStore {
                    key: key.to_owned(),
                    source,
                }),
            None => backend.result(key, generation).await,
        }
    }
}

/// The key a result of one generation of a task key is kept under in a store:
/// `{docket}:results:{key}:{generation}`, as the docket's own Redis names it.
pub(crate) fn store_key(docket: &str, key: &str, generation: u64) -> String {
    format!("{docket}:results:{key}:{generation}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_s_store_key_names_the_docket_the_key_and_the_generation() {
        assert_eq!(store_key("orders", "k1", 3), "orders:results:k1:3");
    }
}
