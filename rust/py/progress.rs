//! Progress reporting and Ctrl-C handling for long calls that run without the GIL.

use pyo3::prelude::*;

use crate::error::{Error, Result};

/// Calls an optional Python `progress(done_bytes, total_bytes)` and checks for pending
/// signals; a Python exception is kept and re-raised once the core has stopped.
pub struct PyProgress {
    callback: Option<Py<PyAny>>,
    pub error: Option<PyErr>,
}

impl PyProgress {
    pub fn new(callback: Option<Py<PyAny>>) -> Self {
        PyProgress {
            callback,
            error: None,
        }
    }

    /// Report `done` of `total`; returns `Err(Cancelled)` after a Python exception.
    pub fn report(&mut self, done: u64, total: u64) -> Result<()> {
        let outcome = Python::attach(|py| -> PyResult<()> {
            py.check_signals()?;
            if let Some(cb) = &self.callback {
                cb.call1(py, (done, total))?;
            }
            Ok(())
        });
        outcome.map_err(|e| {
            self.error = Some(e);
            Error::Cancelled
        })
    }

    /// Turn a core result into a Python result, preferring a kept Python exception.
    pub fn finish<T>(self, r: Result<T>) -> PyResult<T> {
        match (r, self.error) {
            (Err(Error::Cancelled), Some(e)) => Err(e),
            // Stopped by a signal whose handler has not run yet: run it now, so that its
            // exception (not a later one, in the caller's clean-up) is what is raised.
            (Err(Error::Cancelled), None) => {
                let pending = Python::attach(|py| py.check_signals().err());
                Err(pending.unwrap_or_else(|| PyErr::from(Error::Cancelled)))
            }
            (r, _) => r.map_err(PyErr::from),
        }
    }
}

/// Threads to use when the caller does not say: `DNAKMER_NUM_THREADS`, else all cores.
pub fn default_threads(requested: Option<usize>) -> usize {
    requested
        .or_else(|| {
            std::env::var("DNAKMER_NUM_THREADS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1)
}
