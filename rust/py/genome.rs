//! `dnakmer._core.Genome`.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{IntoPyArray, PyArray1, PyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::progress::{default_threads, PyProgress};
use crate::fasta::ReadOptions;
use crate::genome::Genome;

#[pyclass(name = "Genome", module = "dnakmer._core", subclass, frozen)]
pub struct PyGenome {
    pub inner: Arc<Genome>,
}

impl PyGenome {
    fn record(&self, name: &str) -> PyResult<usize> {
        Ok(self.inner.record_index(name)?)
    }
}

#[pymethods]
impl PyGenome {
    #[new]
    #[pyo3(signature = (path, *, threads = None, progress = None, sha256 = false))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        threads: Option<usize>,
        progress: Option<Py<PyAny>>,
        sha256: bool,
    ) -> PyResult<Self> {
        let opts = ReadOptions {
            threads: default_threads(threads),
            sha256,
        };
        let mut reporter = PyProgress::new(progress);
        let result = py.detach(|| {
            let mut cb = |d, t| reporter.report(d, t);
            Genome::open(&path, opts, Some(&mut cb))
        });
        let genome = reporter.finish(result)?;
        Ok(PyGenome {
            inner: Arc::new(genome),
        })
    }

    /// Record names in file order.
    #[getter]
    fn names(&self) -> Vec<String> {
        self.inner
            .records()
            .iter()
            .map(|r| r.name.clone())
            .collect()
    }

    /// Record lengths in file order.
    #[getter]
    fn lengths(&self) -> Vec<u64> {
        self.inner.records().iter().map(|r| r.len).collect()
    }

    /// Header text after the name, per record.
    #[getter]
    fn descriptions(&self) -> Vec<String> {
        self.inner
            .records()
            .iter()
            .map(|r| r.description.clone())
            .collect()
    }

    /// Path the genome was read from.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_path_buf()
    }

    /// Compression of the input: "plain", "gzip" or "bgzf".
    #[getter]
    fn compression(&self) -> &'static str {
        self.inner
            .summary()
            .map_or("plain", |s| s.compression.name())
    }

    /// Hex SHA-256 of the file, when opened with `sha256=True`.
    #[getter]
    fn sha256(&self) -> Option<String> {
        self.inner.summary().and_then(|s| s.source.sha256.clone())
    }

    /// True for a BGZF file without its end-of-file block (it may be truncated).
    #[getter]
    fn bgzf_eof_missing(&self) -> bool {
        self.inner
            .summary()
            .is_some_and(|s| s.source.bgzf_eof_missing)
    }

    /// Total number of bases.
    #[getter]
    fn total_length(&self) -> u64 {
        self.inner.total_len()
    }

    /// Bytes of memory held by the sequence data.
    #[getter]
    fn nbytes(&self) -> usize {
        self.inner.heap_bytes()
    }

    #[pyo3(signature = (name, start = 0, end = None))]
    fn fetch(&self, py: Python<'_>, name: &str, start: u64, end: Option<u64>) -> PyResult<String> {
        let rec = self.record(name)?;
        let bytes = py.detach(|| self.inner.fetch(rec, start, end))?;
        // Sequence bytes are ASCII by construction.
        Ok(String::from_utf8(bytes).expect("ASCII sequence"))
    }

    #[pyo3(signature = (name, start = 0, end = None))]
    fn codes<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        start: u64,
        end: Option<u64>,
    ) -> PyResult<Bound<'py, PyArray1<u8>>> {
        let rec = self.record(name)?;
        let codes = py.detach(|| self.inner.codes(rec, start, end))?;
        Ok(codes.into_pyarray(py))
    }

    fn acgt_intervals<'py>(
        &self,
        py: Python<'py>,
        name: &str,
    ) -> PyResult<Bound<'py, PyArray2<u64>>> {
        let rec = self.record(name)?;
        let iv = self.inner.acgt_intervals(rec);
        let flat: Vec<u64> = iv.iter().flat_map(|&(s, e)| [s, e]).collect();
        let arr =
            numpy::ndarray::Array2::from_shape_vec((iv.len(), 2), flat).expect("shape matches");
        Ok(arr.into_pyarray(py))
    }

    /// Per-record composition as a dict of equal-length lists.
    fn _stats_columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let recs = self.inner.records();
        let d = PyDict::new(py);
        d.set_item(
            "name",
            recs.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        )?;
        d.set_item("length", recs.iter().map(|r| r.len).collect::<Vec<_>>())?;
        let col = |f: fn(&crate::genome::BaseCounts) -> u64| {
            recs.iter().map(|r| f(&r.counts)).collect::<Vec<_>>()
        };
        d.set_item("a", col(|c| c.a))?;
        d.set_item("c", col(|c| c.c))?;
        d.set_item("g", col(|c| c.g))?;
        d.set_item("t", col(|c| c.t))?;
        d.set_item("n", col(|c| c.n))?;
        d.set_item("other", col(|c| c.other))?;
        d.set_item("softmasked", col(|c| c.softmasked))?;
        Ok(d)
    }

    fn __len__(&self) -> usize {
        self.inner.records().len()
    }

    fn __contains__(&self, name: &str) -> bool {
        self.inner.record_index(name).is_ok()
    }

    fn __repr__(&self) -> String {
        format!(
            "Genome('{}', records={}, bases={})",
            self.inner.path().display(),
            self.inner.records().len(),
            self.inner.total_len()
        )
    }
}
