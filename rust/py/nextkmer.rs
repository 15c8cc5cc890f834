//! Bindings of the next-k-mer benchmark: window sampling and tensors, Markov baselines.

// pyo3 hands array arguments over by value; the bindings only borrow them.
#![allow(clippy::needless_pass_by_value)]

use numpy::PyReadonlyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::arrays::{vec1, vec2, with_id_type};
use super::genome::PyGenome;
use super::progress::default_threads;
use super::tokenizer::PyKmerTokenizer;
use crate::error::Error;
use crate::genome::Genome;
use crate::markov::{self, MarkovChain};
use crate::window_tensors::{fill_rows, RowEncoder};
use crate::windows::{
    sample_windows, split_areas, Area, SampleSpec, Sampled, SplitSpec, StrandMode, Window,
};

fn parse_strand(s: &str) -> PyResult<StrandMode> {
    match s {
        "+" => Ok(StrandMode::Forward),
        "-" => Ok(StrandMode::Reverse),
        "both" => Ok(StrandMode::Both),
        other => Err(PyValueError::new_err(format!(
            "strand must be '+', '-' or 'both', not {other:?}"
        ))),
    }
}

fn parse_split(
    split: &str,
    val_records: Vec<String>,
    test_records: Vec<String>,
    block_size: u64,
    val_fraction: f64,
    test_fraction: f64,
) -> PyResult<SplitSpec> {
    match split {
        "records" => Ok(SplitSpec::Records {
            val: val_records,
            test: test_records,
        }),
        "blocks" => Ok(SplitSpec::Blocks {
            block_size,
            val_fraction,
            test_fraction,
        }),
        other => Err(PyValueError::new_err(format!(
            "split must be 'records' or 'blocks', not {other:?}"
        ))),
    }
}

/// Draw the windows of every split and build their inputs and labels.
///
/// Returns a dict of arrays `input_ids` (n, T), `labels`, `record`, `start`, `strand`,
/// `split`, plus `available` (candidates per split), `duplicates_rejected` and `areas`
/// (per split, a list of (record index, start, end)).
#[pyfunction]
#[pyo3(signature = (genome, *, k, context_nt, n_train, n_val, n_test, split, val_records,
    test_records, block_size, val_fraction, test_fraction, strand, dedup, seed,
    tokenizer = None, add_special_tokens = true, threads = None))]
pub fn nextkmer_windows<'py>(
    py: Python<'py>,
    genome: &PyGenome,
    k: usize,
    context_nt: usize,
    n_train: u64,
    n_val: u64,
    n_test: u64,
    split: &str,
    val_records: Vec<String>,
    test_records: Vec<String>,
    block_size: u64,
    val_fraction: f64,
    test_fraction: f64,
    strand: &str,
    dedup: bool,
    seed: u64,
    tokenizer: Option<&PyKmerTokenizer>,
    add_special_tokens: bool,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    crate::vocab::check_k(k)?;
    let spec = SampleSpec {
        context_nt,
        k,
        counts: [n_train, n_val, n_test],
        strands: parse_strand(strand)?,
        dedup,
        seed,
    };
    let split = parse_split(
        split,
        val_records,
        test_records,
        block_size,
        val_fraction,
        test_fraction,
    )?;
    let encoder = match tokenizer {
        Some(t) => RowEncoder::Tokens {
            tokenizer: &t.inner,
            add_special_tokens,
        },
        None => RowEncoder::Codes,
    };
    encoder.check(context_nt)?;
    let g: &Genome = &genome.inner;
    let (areas, sampled) = py.detach(|| {
        let areas = split_areas(g, &split, seed)?;
        let sampled = sample_windows(g, &areas, &spec)?;
        Ok::<_, Error>((areas, sampled))
    })?;
    let threads = default_threads(threads);
    let ws = &sampled.windows;
    let n = ws.len();
    let cols = encoder.cols(context_nt);
    let out = PyDict::new(py);
    let mut labels = vec![0u16; n];
    let width = tokenizer.map_or(crate::kmer::IdWidth::U8, |t| t.inner.width());
    with_id_type!(width, T => {
        let mut ids: Vec<T> = vec![0; n * cols];
        py.detach(|| fill_rows(g, ws, context_nt, k, &encoder, &mut ids, &mut labels, threads));
        out.set_item("input_ids", vec2(py, ids, n, cols))?;
    });
    out.set_item("labels", vec1(py, labels))?;
    add_coordinates(&out, &sampled, &areas)?;
    Ok(out)
}

/// Per-sample coordinates, candidate counts and split areas of a draw.
fn add_coordinates(
    out: &Bound<'_, PyDict>,
    sampled: &Sampled,
    areas: &[Vec<Area>; 3],
) -> PyResult<()> {
    let py = out.py();
    let ws = &sampled.windows;
    let column = |f: fn(&Window) -> u64| ws.iter().map(f).collect::<Vec<u64>>();
    out.set_item(
        "record",
        vec1(py, ws.iter().map(|w| w.rec).collect::<Vec<u32>>()),
    )?;
    out.set_item("start", vec1(py, column(|w| w.start)))?;
    let strand: Vec<i8> = ws.iter().map(|w| if w.minus { -1 } else { 1 }).collect();
    out.set_item("strand", vec1(py, strand))?;
    out.set_item(
        "split",
        vec1(py, ws.iter().map(|w| w.split).collect::<Vec<u8>>()),
    )?;
    out.set_item("available", sampled.available.to_vec())?;
    out.set_item("duplicates_rejected", sampled.duplicates_rejected)?;
    let areas: Vec<Vec<(usize, u64, u64)>> = areas
        .iter()
        .map(|a| a.iter().map(|x| (x.rec, x.start, x.end)).collect())
        .collect();
    out.set_item("areas", areas)
}

/// Windows from coordinate arrays, checked against the genome.
fn windows_from_arrays(
    genome: &Genome,
    record: &PyReadonlyArray1<'_, u32>,
    start: &PyReadonlyArray1<'_, u64>,
    strand: Option<&PyReadonlyArray1<'_, i8>>,
    span: u64,
) -> PyResult<Vec<Window>> {
    let (r, s) = (record.as_slice()?, start.as_slice()?);
    let plus = vec![1i8; if strand.is_none() { r.len() } else { 0 }];
    let st = match strand {
        Some(a) => a.as_slice()?,
        None => &plus[..],
    };
    if r.len() != s.len() || r.len() != st.len() {
        return Err(PyValueError::new_err(format!(
            "record, start and strand differ in length: {}, {}, {}",
            r.len(),
            s.len(),
            st.len()
        )));
    }
    let recs = genome.records();
    let mut out = Vec::with_capacity(r.len());
    for (i, ((&rec, &start), &strand)) in r.iter().zip(s).zip(st).enumerate() {
        let len = recs.get(rec as usize).map(|x| x.len).ok_or_else(|| {
            PyValueError::new_err(format!(
                "sample {i}: record index {rec} is outside the genome ({} records)",
                recs.len()
            ))
        })?;
        if start.checked_add(span).is_none_or(|e| e > len) {
            return Err(PyValueError::new_err(format!(
                "sample {i}: span [{start}, {start} + {span}) is outside record '{}' of length {len}",
                recs[rec as usize].name
            )));
        }
        if strand != 1 && strand != -1 {
            return Err(PyValueError::new_err(format!(
                "sample {i}: strand must be 1 or -1, got {strand}"
            )));
        }
        out.push(Window {
            rec,
            start,
            minus: strand == -1,
            split: 0,
        });
    }
    Ok(out)
}

/// An order-m Markov chain over A/C/G/T (counts of (m+1)-mers).
#[pyclass(name = "MarkovChain", module = "dnakmer._core", frozen)]
pub struct PyMarkovChain {
    inner: MarkovChain,
}

#[pymethods]
impl PyMarkovChain {
    /// Fit on the union of the spans `[start, start + span)` of the given windows (each
    /// base counted once), read on the `+` strand if `plus` and reverse-complemented if
    /// `minus`.
    #[staticmethod]
    #[pyo3(signature = (genome, record, start, span, order, *, plus = true, minus = false))]
    fn fit_windows(
        py: Python<'_>,
        genome: &PyGenome,
        record: PyReadonlyArray1<'_, u32>,
        start: PyReadonlyArray1<'_, u64>,
        span: u64,
        order: usize,
        plus: bool,
        minus: bool,
    ) -> PyResult<Self> {
        let g: &Genome = &genome.inner;
        let ws = windows_from_arrays(g, &record, &start, None, span)?;
        let inner = py.detach(|| {
            let intervals = markov::merged_spans(&ws, span);
            MarkovChain::fit(g, &intervals, plus, minus, order)
        })?;
        Ok(PyMarkovChain { inner })
    }

    /// Fit on code sequences (uint8 arrays of 0-3).
    #[staticmethod]
    fn fit_codes(sequences: Vec<PyReadonlyArray1<'_, u8>>, order: usize) -> PyResult<Self> {
        let mut inner = MarkovChain::new(order)?;
        for s in &sequences {
            inner.add_sequence(s.as_slice()?)?;
        }
        Ok(PyMarkovChain { inner })
    }

    #[getter]
    fn order(&self) -> usize {
        self.inner.order()
    }

    /// Counts of (order+1)-mers by canonical index, uint32.
    #[getter]
    fn counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        vec1(py, self.inner.counts().to_vec())
    }

    /// log2 P(true next k_eval-mer) per window (float64, n) and the best k_eval-mers
    /// (uint32, `n × min(5, 4^k_eval)`), best first.
    #[pyo3(signature = (genome, record, start, strand, *, context_nt, k, k_eval, alpha = 1.0, threads = None))]
    fn score_windows<'py>(
        &self,
        py: Python<'py>,
        genome: &PyGenome,
        record: PyReadonlyArray1<'py, u32>,
        start: PyReadonlyArray1<'py, u64>,
        strand: PyReadonlyArray1<'py, i8>,
        context_nt: usize,
        k: usize,
        k_eval: usize,
        alpha: f64,
        threads: Option<usize>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let g: &Genome = &genome.inner;
        let ws = windows_from_arrays(g, &record, &start, Some(&strand), (context_nt + k) as u64)?;
        let threads = default_threads(threads);
        let scores = py.detach(|| {
            markov::score_windows(g, &self.inner, alpha, &ws, context_nt, k, k_eval, threads)
        })?;
        let n = ws.len();
        Ok((
            vec1(py, scores.log2p),
            vec2(py, scores.top, n, scores.n_top),
        ))
    }

    fn __repr__(&self) -> String {
        format!("MarkovChain(order={})", self.inner.order())
    }
}
