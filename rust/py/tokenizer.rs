//! `dnakmer._core.KmerTokenizer` and whole-file tokenization.

use std::path::PathBuf;

use numpy::PyReadonlyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use super::arrays::{vec1, vec2, with_id_type};
use super::progress::{default_threads, PyProgress};
use crate::fasta::{ReadOptions, ReadSummary};
use crate::kmer::{Padding, Tokenizer};
use crate::tokenize;
use crate::vocab::Vocab;

#[pyclass(name = "KmerTokenizer", module = "dnakmer._core", subclass, frozen)]
pub struct PyKmerTokenizer {
    pub inner: Tokenizer,
    threads: Option<usize>,
}

/// Borrow the bytes of a `str` or `bytes` sequence.
fn seq_bytes<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<&'a [u8]> {
    if let Ok(s) = obj.cast::<PyString>() {
        Ok(s.to_str()?.as_bytes())
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        Ok(b.as_bytes())
    } else {
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "a sequence must be str or bytes, not {}",
            obj.get_type().name()?
        )))
    }
}

fn parse_padding(obj: &Bound<'_, PyAny>) -> PyResult<Option<Padding>> {
    if let Ok(b) = obj.extract::<bool>() {
        return Ok(b.then_some(Padding::Longest));
    }
    match obj.extract::<String>()?.as_str() {
        "longest" => Ok(Some(Padding::Longest)),
        "max_length" => Ok(Some(Padding::MaxLength)),
        "do_not_pad" => Ok(None),
        other => Err(PyValueError::new_err(format!(
            "padding must be True, False, 'longest', 'max_length' or 'do_not_pad', not {other:?}"
        ))),
    }
}

pub fn summary_dict<'py>(py: Python<'py>, s: &ReadSummary) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("compression", s.compression.name())?;
    d.set_item("records", s.records)?;
    d.set_item("lines", s.lines)?;
    d.set_item("pieces", s.pieces)?;
    d.set_item("bytes_read", s.source.bytes_read)?;
    d.set_item("file_size", s.source.file_size)?;
    d.set_item("sha256", s.source.sha256.clone())?;
    d.set_item("bgzf_eof_missing", s.source.bgzf_eof_missing)?;
    Ok(d)
}

#[pymethods]
impl PyKmerTokenizer {
    #[new]
    #[pyo3(signature = (k = None, stride = 1, *, vocab = None, threads = None))]
    fn new(
        k: Option<usize>,
        stride: usize,
        vocab: Option<PathBuf>,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let v = match &vocab {
            Some(path) => {
                let v = Vocab::from_file(path)?;
                if let Some(k) = k {
                    if k != v.k() {
                        return Err(PyValueError::new_err(format!(
                            "k = {k} does not match the {}-mers of {}",
                            v.k(),
                            path.display()
                        )));
                    }
                }
                v
            }
            None => Vocab::dnabert(k.unwrap_or(6))?,
        };
        Ok(PyKmerTokenizer {
            inner: Tokenizer::new(v, stride)?,
            threads,
        })
    }

    #[getter]
    fn k(&self) -> usize {
        self.inner.k()
    }

    #[getter]
    fn stride(&self) -> usize {
        self.inner.stride()
    }

    #[getter]
    fn vocab_size(&self) -> usize {
        self.inner.vocab().len()
    }

    /// NumPy dtype name of token ids ("uint8", "uint16" or "uint32").
    #[getter]
    fn dtype(&self) -> &'static str {
        self.inner.width().numpy_name()
    }

    #[getter]
    fn vocab(&self) -> Vec<String> {
        self.inner.vocab().tokens().to_vec()
    }

    #[getter]
    fn pad_token_id(&self) -> u32 {
        self.inner.vocab().specials().pad
    }

    #[getter]
    fn unk_token_id(&self) -> u32 {
        self.inner.vocab().specials().unk
    }

    #[getter]
    fn cls_token_id(&self) -> u32 {
        self.inner.vocab().specials().cls
    }

    #[getter]
    fn sep_token_id(&self) -> u32 {
        self.inner.vocab().specials().sep
    }

    #[getter]
    fn mask_token_id(&self) -> u32 {
        self.inner.vocab().specials().mask
    }

    /// Token id of each k-mer, indexed by canonical k-mer index (A=0, T=1, C=2, G=3).
    #[getter]
    fn kmer_ids<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        vec1(py, self.inner.vocab().kmer_ids().to_vec())
    }

    /// Canonical k-mer index of each token id, -1 for special tokens.
    #[getter]
    fn id_to_kmer_index<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        vec1(py, self.inner.vocab().id_to_kmer_index())
    }

    fn n_tokens(&self, length: usize) -> usize {
        self.inner.n_tokens(length)
    }

    fn encode<'py>(&self, py: Python<'py>, seq: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let bytes = seq_bytes(seq)?;
        let tok = &self.inner;
        with_id_type!(tok.width(), T => {
            let ids = py.detach(|| tok.encode::<T>(bytes))?;
            Ok(vec1(py, ids))
        })
    }

    /// Encode base codes (uint8: 0-3 = A/T/C/G, 4 = other).
    fn encode_codes<'py>(
        &self,
        py: Python<'py>,
        codes: PyReadonlyArray1<'py, u8>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let slice = codes.as_slice()?;
        let tok = &self.inner;
        with_id_type!(tok.width(), T => {
            let ids = py.detach(|| {
                let mut out = Vec::with_capacity(tok.n_tokens(slice.len()));
                tok.encode_codes_into::<T>(slice, &mut out).map(|()| out)
            })?;
            Ok(vec1(py, ids))
        })
    }

    #[pyo3(signature = (seqs, max_length = 512, add_special_tokens = true, padding = None, truncation = true, threads = None))]
    fn encode_batch<'py>(
        &self,
        py: Python<'py>,
        seqs: &Bound<'py, PyAny>,
        max_length: usize,
        add_special_tokens: bool,
        padding: Option<Bound<'py, PyAny>>,
        truncation: bool,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        if seqs.is_instance_of::<PyString>() || seqs.is_instance_of::<PyBytes>() {
            // Iterating a str would silently make one sequence per character.
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "encode_batch takes a list of sequences, not a single str or bytes \
                 (use encode, or wrap it in a list)",
            ));
        }
        let items: Vec<Bound<'py, PyAny>> = seqs.try_iter()?.collect::<PyResult<_>>()?;
        let slices: Vec<&[u8]> = items.iter().map(seq_bytes).collect::<PyResult<_>>()?;
        let padding = match &padding {
            Some(p) => parse_padding(p)?,
            None => Some(Padding::Longest),
        };
        let threads =
            default_threads(threads.or(self.threads)).min(slices.len().div_ceil(64).max(1));
        let tok = &self.inner;
        let out = PyDict::new(py);
        with_id_type!(tok.width(), T => {
            if let Some(padding) = padding {
                let b = py.detach(|| {
                    tok.encode_batch::<T>(&slices, max_length, add_special_tokens, padding, truncation, threads)
                })?;
                out.set_item("input_ids", vec2(py, b.ids, b.rows, b.cols))?;
                out.set_item("attention_mask", vec2(py, b.mask, b.rows, b.cols))?;
            } else {
                let n_special = if add_special_tokens { 2 } else { 0 };
                if truncation && max_length <= n_special {
                    return Err(PyValueError::new_err("max_length must exceed the special tokens"));
                }
                let limit = truncation.then(|| max_length - n_special);
                let rows = py.detach(|| tok.encode_many::<T>(&slices, limit, threads))?;
                let sp = tok.vocab().specials();
                let ids = PyList::empty(py);
                let masks = PyList::empty(py);
                for row in rows {
                    let mut r: Vec<T> = Vec::with_capacity(row.len() + n_special);
                    if add_special_tokens {
                        r.push(sp.cls as T);
                        r.extend_from_slice(&row);
                        r.push(sp.sep as T);
                    } else {
                        r = row;
                    }
                    masks.append(vec1(py, vec![1u8; r.len()]))?;
                    ids.append(vec1(py, r))?;
                }
                out.set_item("input_ids", ids)?;
                out.set_item("attention_mask", masks)?;
            }
            Ok(out)
        })
    }

    #[pyo3(signature = (ids, skip_special_tokens = false))]
    fn decode(&self, ids: Vec<u32>, skip_special_tokens: bool) -> PyResult<String> {
        Ok(self.inner.decode(&ids, skip_special_tokens)?)
    }

    /// Nucleotide span [start, end) of each of `n_tokens` tokens, shape (n, 2).
    fn offsets<'py>(&self, py: Python<'py>, n_tokens: usize) -> PyResult<Bound<'py, PyAny>> {
        let flat: Vec<u64> = self
            .inner
            .offsets(n_tokens)?
            .into_iter()
            .flatten()
            .collect();
        Ok(vec2(py, flat, n_tokens, 2))
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner
            .vocab()
            .tokens()
            .iter()
            .position(|t| t == token)
            .map(|i| i as u32)
    }

    fn id_to_token(&self, id: usize) -> Option<String> {
        self.inner.vocab().tokens().get(id).cloned()
    }

    /// The vocabulary as `vocab.txt` text (one token per line).
    fn vocab_text(&self) -> String {
        self.inner.vocab().to_text()
    }

    fn __repr__(&self) -> String {
        format!(
            "KmerTokenizer(k={}, stride={}, vocab_size={})",
            self.inner.k(),
            self.inner.stride(),
            self.inner.vocab().len()
        )
    }
}

/// Tokenize every record of a FASTA file in memory:
/// returns (list of (name, ids, bases, n_unk), summary dict).
#[pyfunction]
#[pyo3(signature = (path, tokenizer, *, threads = None, progress = None, sha256 = false))]
pub fn tokenize_fasta<'py>(
    py: Python<'py>,
    path: PathBuf,
    tokenizer: &PyKmerTokenizer,
    threads: Option<usize>,
    progress: Option<Py<PyAny>>,
    sha256: bool,
) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyDict>)> {
    let opts = ReadOptions {
        threads: default_threads(threads),
        sha256,
    };
    let tok = &tokenizer.inner;
    let mut reporter = PyProgress::new(progress);
    with_id_type!(tok.width(), T => {
        let r = py.detach(|| {
            let mut cb = |d, t| reporter.report(d, t);
            tokenize::tokenize_fasta::<T>(&path, tok, opts, Some(&mut cb))
        });
        let (records, summary) = reporter.finish(r)?;
        let list = PyList::empty(py);
        for rec in records {
            list.append((rec.name, vec1(py, rec.ids), rec.bases, rec.n_unk))?;
        }
        Ok((list, summary_dict(py, &summary)?))
    })
}

/// Stream every record of a FASTA file to `<out_dir>/<record>.npy`:
/// returns (list of per-record dicts, summary dict).
#[pyfunction]
#[pyo3(signature = (path, tokenizer, out_dir, *, threads = None, progress = None))]
pub fn tokenize_fasta_to_npy<'py>(
    py: Python<'py>,
    path: PathBuf,
    tokenizer: &PyKmerTokenizer,
    out_dir: PathBuf,
    threads: Option<usize>,
    progress: Option<Py<PyAny>>,
) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyDict>)> {
    let opts = ReadOptions {
        threads: default_threads(threads),
        sha256: true,
    };
    let tok = &tokenizer.inner;
    let mut reporter = PyProgress::new(progress);
    with_id_type!(tok.width(), T => {
        let r = py.detach(|| {
            let mut cb = |d, t| reporter.report(d, t);
            tokenize::tokenize_fasta_to_npy::<T>(&path, tok, &out_dir, opts, Some(&mut cb))
        });
        let (files, summary) = reporter.finish(r)?;
        let list = PyList::empty(py);
        for f in files {
            let d = PyDict::new(py);
            d.set_item("name", f.name)?;
            d.set_item("file", f.file.file_name().map(|n| n.to_string_lossy().into_owned()))?;
            d.set_item("bases", f.bases)?;
            d.set_item("n_tokens", f.n_tokens)?;
            d.set_item("n_unk", f.n_unk)?;
            list.append(d)?;
        }
        Ok((list, summary_dict(py, &summary)?))
    })
}
