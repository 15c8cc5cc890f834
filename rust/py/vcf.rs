//! `dnakmer._core.read_vcf`.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::arrays::vec1;
use super::progress::{default_threads, PyProgress};
use crate::vcf::{read_vcf as read, StrColumn};

/// The data records of a VCF as columns: `line` and `pos` (int64 arrays), `chrom`,
/// `id`, `ref` and `alt` (lists of str); and a summary dict.
#[pyfunction]
#[pyo3(signature = (path, *, threads = None, progress = None))]
pub fn read_vcf(
    py: Python<'_>,
    path: PathBuf,
    threads: Option<usize>,
    progress: Option<Py<PyAny>>,
) -> PyResult<(Bound<'_, PyDict>, Bound<'_, PyDict>)> {
    let threads = default_threads(threads);
    let mut reporter = PyProgress::new(progress);
    let result = py.detach(|| {
        let mut cb = |d, t| reporter.report(d, t);
        read(&path, threads, Some(&mut cb))
    });
    let vcf = reporter.finish(result)?;
    let r = vcf.records;
    let columns = PyDict::new(py);
    columns.set_item("line", vec1(py, to_i64(r.line)))?;
    columns.set_item("chrom", strings(py, &r.chrom)?)?;
    columns.set_item("pos", vec1(py, to_i64(r.pos)))?;
    columns.set_item("id", strings(py, &r.id)?)?;
    columns.set_item("ref", strings(py, &r.ref_bases)?)?;
    columns.set_item("alt", strings(py, &r.alt)?)?;
    let summary = PyDict::new(py);
    summary.set_item("compression", vcf.compression.name())?;
    summary.set_item("lines", vcf.lines)?;
    summary.set_item("bytes_read", vcf.source.bytes_read)?;
    summary.set_item("file_size", vcf.source.file_size)?;
    summary.set_item("bgzf_eof_missing", vcf.source.bgzf_eof_missing)?;
    Ok((columns, summary))
}

/// Lines and positions as int64 (the reader keeps them at most `i64::MAX`).
fn to_i64(v: Vec<u64>) -> Vec<i64> {
    v.into_iter()
        .map(|x| i64::try_from(x).unwrap_or(i64::MAX))
        .collect()
}

fn strings<'py>(py: Python<'py>, column: &StrColumn) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, column.iter())
}
