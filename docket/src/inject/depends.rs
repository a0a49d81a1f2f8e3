//! User dependencies: [`Depends<T>`] (resolved per run, once per run), [`Shared<T>`]
//! (built once per worker, torn down when it stops) and the values a worker is given
//! on its builder.

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;

use super::{FromExecution, WorkerInfo};
use crate::client::Docket;
use crate::execution::Execution;

/// Any [`FromExecution`] type, resolved once per run however many parameters ask for it.
///
/// ```
/// use docket::{Depends, Execution, FromExecution};
///
/// /// The tenant a key belongs to (`tenant/job`).
/// #[derive(Clone)]
/// struct Tenant(String);
///
/// impl FromExecution for Tenant {
///     type Rejection = String;
///     async fn from_execution(execution: &Execution) -> Result<Self, String> {
///         let (tenant, _) = execution.key().split_once('/').ok_or("no tenant in the key")?;
///         Ok(Tenant(tenant.to_owned()))
///     }
/// }
///
/// #[docket::task]
/// async fn rebuild(shard: u32, tenant: Depends<Tenant>) -> String {
///     format!("{} shard {shard}", tenant.0)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Depends<T>(T);

impl<T> Depends<T> {
    /// The resolved value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Depends<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: FromExecution + Clone + Sync> FromExecution for Depends<T> {
    type Rejection = T::Rejection;

    async fn from_execution(execution: &Execution) -> Result<Self, Self::Rejection> {
        let control = execution.control();
        if let Some(value) = control.and_then(|c| c.value::<T>()) {
            return Ok(Self(value));
        }
        let value = T::from_execution(execution).await?;
        if let Some(control) = control {
            control.insert(value.clone());
        }
        Ok(Self(value))
    }
}

/// A value a worker builds once (a connection pool, a client) and every run shares;
/// torn down when the worker stops. Injected as [`Shared<T>`].
///
/// Either build it here, or implement the trait with no body and give the worker a
/// ready value with [`WorkerBuilder::shared`](crate::WorkerBuilder::shared):
///
/// ```
/// use docket::{FromWorker, Shared, WorkerInfo};
///
/// struct Pool { size: usize }
///
/// impl FromWorker for Pool {
///     async fn from_worker(worker: &WorkerInfo) -> Result<Self, String> {
///         Ok(Pool { size: worker.concurrency() })
///     }
/// }
///
/// struct Settings { greeting: String }
/// impl FromWorker for Settings {}
///
/// #[docket::task]
/// async fn greet(name: String, pool: Shared<Pool>, settings: Shared<Settings>) -> String {
///     format!("{} {name} ({} connections)", settings.greeting, pool.size)
/// }
///
/// # async fn build(docket: docket::Docket) -> docket::Result<()> {
/// let worker = docket::Worker::builder(docket)
///     .shared(Settings { greeting: "hello".into() })
///     .build()?;
/// # Ok(()) }
/// ```
pub trait FromWorker: Sized + Send + Sync + 'static {
    /// Builds the value, the first time a run of this worker needs it. The default
    /// refuses: the value must be given to the worker's builder.
    fn from_worker(worker: &WorkerInfo) -> impl Future<Output = Result<Self, String>> + Send {
        let _ = worker;
        async {
            Err(format!(
                "no `{}` was given to this worker: pass one to `WorkerBuilder::shared` or \
                 implement `FromWorker::from_worker`",
                type_name::<Self>()
            ))
        }
    }

    /// Releases the value when the worker stops (the default does nothing).
    fn teardown(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// A per-worker value (see [`FromWorker`]).
pub struct Shared<T>(Arc<T>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Shared<T> {
    /// The shared value itself.
    pub fn arc(&self) -> Arc<T> {
        self.0.clone()
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Shared").field(&self.0).finish()
    }
}

impl<T: FromWorker> FromExecution for Shared<T> {
    type Rejection = String;

    async fn from_execution(execution: &Execution) -> Result<Self, Self::Rejection> {
        let (Some(context), Some(worker)) = (WorkerContext::of(execution), execution.worker())
        else {
            return Err("shared values exist only inside a worker".to_owned());
        };
        context.values.get_or_build::<T>(worker).await.map(Self)
    }
}

/// What a worker gives each of its runs for injection: its docket handle and its shared
/// values. One per worker, shared by every run (the run's control block holds it).
pub(crate) struct WorkerContext {
    pub docket: Docket,
    pub values: Arc<WorkerValues>,
}

impl WorkerContext {
    /// The context of the worker running `execution`.
    pub(crate) fn of(execution: &Execution) -> Option<&Self> {
        execution.control()?.worker::<Self>()
    }
}

type Teardown = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;
type Slot = Arc<OnceCell<Arc<dyn Any + Send + Sync>>>;

/// One worker's shared values, by type.
#[derive(Default)]
pub(crate) struct WorkerValues {
    slots: Mutex<HashMap<TypeId, Slot>>,
    /// Teardowns of the values this worker built, in build order.
    teardowns: Mutex<Vec<(TypeId, Teardown)>>,
}

impl fmt::Debug for WorkerValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerValues").finish_non_exhaustive()
    }
}

impl WorkerValues {
    /// Gives the worker a ready value (never torn down by docket).
    pub(crate) fn provide<T: Send + Sync + 'static>(&self, value: T) {
        let cell = OnceCell::new_with(Some(Arc::new(value) as Arc<dyn Any + Send + Sync>));
        self.lock_slots().insert(TypeId::of::<T>(), Arc::new(cell));
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, HashMap<TypeId, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn get_or_build<T: FromWorker>(&self, worker: &WorkerInfo) -> Result<Arc<T>, String> {
        let slot = self
            .lock_slots()
            .entry(TypeId::of::<T>())
            .or_default()
            .clone();
        let value = slot
            .get_or_try_init(|| async {
                let value = Arc::new(T::from_worker(worker).await?);
                let torn = value.clone();
                self.teardowns
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((
                        TypeId::of::<T>(),
                        Box::new(move || Box::pin(async move { torn.teardown().await })),
                    ));
                Ok::<_, String>(value as Arc<dyn Any + Send + Sync>)
            })
            .await?
            .clone();
        value
            .downcast::<T>()
            .map_err(|_| format!("the shared `{}` has another type", type_name::<T>()))
    }

    /// Tears down what this worker built, last built first, and forgets it (a worker
    /// run again builds afresh). Values given on the builder stay.
    pub(crate) async fn teardown(&self) {
        let teardowns = std::mem::take(
            &mut *self
                .teardowns
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        {
            let mut slots = self.lock_slots();
            for (type_id, _) in &teardowns {
                slots.remove(type_id);
            }
        }
        for (_, teardown) in teardowns.into_iter().rev() {
            teardown().await;
        }
    }
}
