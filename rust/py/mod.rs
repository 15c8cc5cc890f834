//! The Python extension module `dnakmer._core`. This is the only code that uses pyo3:
//! each binding converts its arguments, calls the core with the GIL released, and
//! converts the result.

// pyo3 extracts arguments as owned values; taking them by value is the idiom.
#![allow(clippy::needless_pass_by_value)]

use pyo3::prelude::*;

mod arrays;
mod errors;
mod genome;
mod nextkmer;
mod progress;
mod tokenizer;
mod vcf;

/// SHA-256 of a file, hex-encoded.
#[pyfunction]
fn sha256_file(py: Python<'_>, path: std::path::PathBuf) -> PyResult<String> {
    Ok(py.detach(|| crate::source::sha256_file(&path))?)
}

/// DNABERT's vocabulary for k: special tokens then k-mers in product("ATCG") order.
#[pyfunction]
fn dnabert_vocab(k: usize) -> PyResult<Vec<String>> {
    Ok(crate::vocab::Vocab::dnabert(k)?.tokens().to_vec())
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<genome::PyGenome>()?;
    m.add_class::<tokenizer::PyKmerTokenizer>()?;
    m.add_function(wrap_pyfunction!(tokenizer::tokenize_fasta, m)?)?;
    m.add_function(wrap_pyfunction!(tokenizer::tokenize_fasta_to_npy, m)?)?;
    m.add_function(wrap_pyfunction!(sha256_file, m)?)?;
    m.add_function(wrap_pyfunction!(dnabert_vocab, m)?)?;
    m.add_function(wrap_pyfunction!(nextkmer::nextkmer_windows, m)?)?;
    m.add_class::<nextkmer::PyMarkovChain>()?;
    m.add_function(wrap_pyfunction!(vcf::read_vcf, m)?)?;
    Ok(())
}
