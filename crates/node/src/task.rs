//! The one way a model's long work leaves the JS thread. A model keeps its state in a
//! [`Shared`] handle; each piece of long work is a [`Job`] that runs one chunk on libuv's
//! pool as a napi `AsyncTask`, watching the model's cancel flag. While a chunk is in flight
//! the model is busy: every other use of it is refused with `ERR_BUSY` instead of blocking
//! the JS thread. A failed chunk rejects its promise with an `Error` whose `code` is the
//! binding's string code (`ERR_DIVERGED`, `ERR_INVALID_ARG`, ...), as a synchronous call throws.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use napi::bindgen_prelude::{AsyncTask, ToNapiValue, TypeName, Unknown};
use napi::{Env, JsError, Task};

use crate::errors::{guard, Error, Result};

/// One chunk of long work on a model's state.
pub trait Job: Send + Sized + 'static {
    /// What the job works on (the model), locked for the whole chunk.
    type State: Send + 'static;
    /// The chunk's result, made on the worker thread.
    type Output: Send + 'static;
    /// The chunk's result as the promise resolves with it.
    type JsValue: ToNapiValue + TypeName;

    /// Names the work in the message of a panic caught on the worker thread.
    const WHAT: &'static str;

    /// Runs one chunk on a libuv worker thread. A long chunk polls `cancel` and returns early,
    /// leaving the state consistent, once it is set.
    fn run(&mut self, state: &mut Self::State, cancel: &AtomicBool) -> Result<Self::Output>;

    /// The output as a JS value (on the JS thread).
    fn to_js(output: Self::Output) -> Self::JsValue;
}

/// A model's state as its JS object holds it: reachable from the JS thread between chunks and
/// from one worker thread during a chunk.
pub struct Shared<S> {
    state: Arc<Mutex<S>>,
    cancel: Arc<AtomicBool>,
    running: Arc<AtomicBool>,
    /// The `ERR_BUSY` message: names the model and the work to await.
    busy: &'static str,
}

impl<S: Send + 'static> Shared<S> {
    pub fn new(state: S, busy: &'static str) -> Self {
        Shared {
            state: Arc::new(Mutex::new(state)),
            cancel: Arc::new(AtomicBool::new(false)),
            running: Arc::new(AtomicBool::new(false)),
            busy,
        }
    }

    /// The state for a synchronous call; `ERR_BUSY` while a chunk is in flight.
    pub fn lock(&self) -> Result<MutexGuard<'_, S>> {
        if self.running.load(Ordering::SeqCst) {
            return Err(busy(self.busy));
        }
        lock_now(&self.state, self.busy)
    }

    /// Runs `f` on the state (see [`Shared::lock`]).
    pub fn with<T>(&self, f: impl FnOnce(&mut S) -> Result<T>) -> Result<T> {
        f(&mut *self.lock()?)
    }

    /// Starts `job` as the model's one chunk in flight, with the cancel flag cleared.
    pub fn start<J: Job<State = S>>(&self, job: J) -> Result<AsyncTask<ChunkTask<J>>> {
        if self.running.swap(true, Ordering::SeqCst) {
            return Err(busy(self.busy));
        }
        self.cancel.store(false, Ordering::SeqCst);
        Ok(AsyncTask::new(ChunkTask {
            job,
            state: self.state.clone(),
            cancel: self.cancel.clone(),
            running: Running(self.running.clone()),
            busy: self.busy,
        }))
    }

    /// Asks the chunk in flight to stop at its next check.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
}

/// Runs `job` off the JS thread on a state of its own (work that belongs to no model).
pub fn detached<J: Job>(job: J, state: J::State) -> AsyncTask<ChunkTask<J>> {
    let task = Shared::new(state, "native task: busy").start(job);
    task.unwrap_or_else(|_| unreachable!("a fresh state has no chunk in flight"))
}

fn busy(message: &str) -> Error {
    Error::new("ERR_BUSY".to_string(), message.to_string())
}

/// Never blocks: the JS thread must not wait for a worker.
fn lock_now<'a, S>(state: &'a Mutex<S>, busy_message: &str) -> Result<MutexGuard<'a, S>> {
    state.try_lock().map_err(|e| match e {
        TryLockError::WouldBlock => busy(busy_message),
        // a panic in an earlier chunk (already reported as ERR_INTERNAL) left the state unknown
        TryLockError::Poisoned(_) => Error::new(
            "ERR_INTERNAL".to_string(),
            "the model is unusable after an internal error in the native core".to_string(),
        ),
    })
}

/// Marks the model busy while the chunk lives; cleared when the chunk settles (and, should
/// napi never run it, when it is dropped).
struct Running(Arc<AtomicBool>);

impl Running {
    fn clear(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The napi task behind every chunk.
pub struct ChunkTask<J: Job> {
    job: J,
    state: Arc<Mutex<J::State>>,
    cancel: Arc<AtomicBool>,
    running: Running,
    busy: &'static str,
}

impl<J: Job> Task for ChunkTask<J> {
    // The binding's error travels as a value: napi's own task error carries only a `Status`.
    type Output = Result<J::Output>;
    type JsValue = J::JsValue;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let (job, state, cancel, busy) = (&mut self.job, &self.state, &self.cancel, self.busy);
        Ok(guard(J::WHAT, move || {
            let mut state = lock_now(state, busy)?;
            job.run(&mut state, cancel)
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        // cleared before the promise settles, so its continuation may use the model at once
        self.running.clear();
        output.map(J::to_js).map_err(|e| rejection(env, e))
    }

    fn reject(&mut self, _env: Env, err: napi::Error) -> napi::Result<Self::JsValue> {
        self.running.clear();
        Err(err)
    }
}

/// The JS `Error` (message, string `code`) a failed chunk's promise rejects with, built on the
/// JS thread and handed to napi as a JS value so the code survives the rejection.
fn rejection(env: Env, e: Error) -> napi::Error {
    let (code, message) = (e.status.clone(), e.reason.clone());
    let value = unsafe { JsError::from(e).into_value(env.raw()) };
    if value.is_null() {
        // the environment is shutting down: nothing in JS will read the error
        return napi::Error::from_reason(format!("[{code}] {message}"));
    }
    napi::Error::from(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
}
