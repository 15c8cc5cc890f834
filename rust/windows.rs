//! Next-k-mer windows: where samples may come from (splits), and which ones are drawn.
//!
//! A window of length `span = context_nt + k` is the `+` strand interval
//! `[start, start + span)` of one record. It is emitted only if every base in it is
//! A/C/G/T and the whole span lies inside one area of its split, so spans of different
//! splits never overlap.
//!
//! # Randomness
//! Everything random comes from [`SplitMix64`] (Steele, Lea & Flood 2014; the generator
//! `java.util.SplittableRandom` uses), reduced to a range by Lemire's multiply-shift with
//! rejection, so the same seed gives the same windows on every platform and version.
//! Each purpose draws from its own stream, `SplitMix64::stream(seed, purpose)`.
//! Windows are drawn without replacement by a sparse Fisher–Yates shuffle of the
//! candidate indices (memory proportional to the draws, not to the genome).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::error::{Error, Result};
use crate::genome::Genome;

/// The `SplitMix64` generator.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// `SplitMix64`'s output function (a strong 64-bit mixer).
#[inline]
#[must_use]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    /// A generator whose first output is `mix64(seed + GOLDEN_GAMMA)`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// An independent stream for one purpose: the state is `mix64(seed ^ mix64(purpose + 1))`.
    #[must_use]
    pub fn stream(seed: u64, purpose: u64) -> Self {
        SplitMix64::new(mix64(seed ^ mix64(purpose.wrapping_add(1))))
    }

    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// Uniform integer in `[0, n)` (Lemire 2019), `n > 0`.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }
}

/// Hasher for keys that are already well mixed or small integers.
#[derive(Default)]
pub struct U64Hasher(u64);

impl Hasher for U64Hasher {
    fn finish(&self) -> u64 {
        mix64(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)) ^ (self.0 >> 56);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

type U64Build = BuildHasherDefault<U64Hasher>;

/// A random permutation of `0..n`, produced one element at a time (sparse Fisher–Yates:
/// step `i` swaps slot `i` with a uniform slot in `[i, n)`; only moved slots are stored).
pub struct SparseShuffle {
    n: u64,
    i: u64,
    moved: HashMap<u64, u64, U64Build>,
}

impl SparseShuffle {
    #[must_use]
    pub fn new(n: u64) -> Self {
        SparseShuffle {
            n,
            i: 0,
            moved: HashMap::default(),
        }
    }

    /// The next element, or `None` once all `n` were produced.
    pub fn next(&mut self, rng: &mut SplitMix64) -> Option<u64> {
        if self.i == self.n {
            return None;
        }
        let i = self.i;
        let j = i + rng.below(self.n - i);
        let at_j = self.moved.get(&j).copied().unwrap_or(j);
        let at_i = self.moved.remove(&i).unwrap_or(i);
        if j != i {
            self.moved.insert(j, at_i);
        }
        self.i += 1;
        Some(at_j)
    }
}

/// Split names in the order of their numeric code.
pub const SPLIT_NAMES: [&str; 3] = ["train", "val", "test"];

/// A stretch `[start, end)` of one record that belongs to one split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    pub rec: usize,
    pub start: u64,
    pub end: u64,
}

/// How the genome is divided between train, val and test.
#[derive(Debug, Clone)]
pub enum SplitSpec {
    /// Whole records held out; every other record is train.
    Records { val: Vec<String>, test: Vec<String> },
    /// Each record cut into `block_size` blocks; a seeded choice of
    /// `round(fraction * n_blocks)` blocks (at least one for a fraction > 0) goes to val
    /// and to test.
    Blocks {
        block_size: u64,
        val_fraction: f64,
        test_fraction: f64,
    },
}

/// Stream purposes (see the module documentation).
const PURPOSE_BLOCKS: u64 = 0;
const PURPOSE_SAMPLE: u64 = 1; // + split code

/// The areas of each split (index 0 = train, 1 = val, 2 = test).
pub fn split_areas(genome: &Genome, spec: &SplitSpec, seed: u64) -> Result<[Vec<Area>; 3]> {
    let recs = genome.records();
    let whole = |rec: usize| Area {
        rec,
        start: 0,
        end: recs[rec].len,
    };
    match spec {
        SplitSpec::Records { val, test } => {
            let mut owner = vec![0u8; recs.len()];
            for (code, names) in [(1u8, val), (2u8, test)] {
                for name in names {
                    let rec = genome.record_index(name)?;
                    if owner[rec] != 0 {
                        return Err(Error::invalid(format!(
                            "record '{name}' is listed for more than one split"
                        )));
                    }
                    owner[rec] = code;
                }
            }
            let mut areas: [Vec<Area>; 3] = Default::default();
            for (rec, &code) in owner.iter().enumerate() {
                areas[code as usize].push(whole(rec));
            }
            Ok(areas)
        }
        SplitSpec::Blocks {
            block_size,
            val_fraction,
            test_fraction,
        } => block_areas(genome, *block_size, *val_fraction, *test_fraction, seed),
    }
}

/// Blocks in record order, then a seeded shuffle picks the val and test blocks.
fn block_areas(
    genome: &Genome,
    block: u64,
    val_f: f64,
    test_f: f64,
    seed: u64,
) -> Result<[Vec<Area>; 3]> {
    if block == 0 {
        return Err(Error::invalid("block_size must be at least 1"));
    }
    for (name, f) in [("val_fraction", val_f), ("test_fraction", test_f)] {
        if !(0.0..1.0).contains(&f) {
            return Err(Error::invalid(format!("{name} must be in [0, 1), got {f}")));
        }
    }
    if val_f + test_f >= 1.0 {
        return Err(Error::invalid(format!(
            "val_fraction + test_fraction must be below 1, got {}",
            val_f + test_f
        )));
    }
    let mut blocks = Vec::new();
    for (rec, r) in genome.records().iter().enumerate() {
        let mut s = 0;
        while s < r.len {
            blocks.push(Area {
                rec,
                start: s,
                end: (s + block).min(r.len),
            });
            s += block;
        }
    }
    let n = blocks.len();
    let want = |f: f64| {
        if f > 0.0 {
            ((f * n as f64).round() as usize).max(1)
        } else {
            0
        }
    };
    let (n_val, n_test) = (want(val_f), want(test_f));
    if n_val + n_test >= n {
        return Err(Error::invalid(format!(
            "the genome has only {n} blocks of block_size {block}; {n_val} val + {n_test} test \
             blocks leave none for train (use a smaller block_size)"
        )));
    }
    let mut owner = vec![0u8; n];
    let mut rng = SplitMix64::stream(seed, PURPOSE_BLOCKS);
    let mut shuffle = SparseShuffle::new(n as u64);
    for i in 0..n_val + n_test {
        let b = shuffle.next(&mut rng).expect("fewer picks than blocks") as usize;
        owner[b] = if i < n_val { 1 } else { 2 };
    }
    let mut areas: [Vec<Area>; 3] = Default::default();
    for (b, area) in blocks.into_iter().enumerate() {
        areas[owner[b] as usize].push(area);
    }
    Ok(areas)
}

/// Which strands samples are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrandMode {
    Forward,
    Reverse,
    Both,
}

impl StrandMode {
    fn count(self) -> u64 {
        if self == StrandMode::Both {
            2
        } else {
            1
        }
    }

    /// Strand of candidate `index` (position-major: `index / count` is the position).
    fn minus(self, index: u64) -> bool {
        match self {
            StrandMode::Forward => false,
            StrandMode::Reverse => true,
            StrandMode::Both => index & 1 == 1,
        }
    }
}

/// One drawn sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub rec: u32,
    /// Leftmost `+` strand coordinate of the span `[start, start + context_nt + k)`.
    pub start: u64,
    /// Drawn from the reverse strand.
    pub minus: bool,
    /// 0 = train, 1 = val, 2 = test.
    pub split: u8,
}

/// Set `buf` to the oriented codes (0–3) of the window's whole span.
pub fn oriented_span(genome: &Genome, w: &Window, span: u64, buf: &mut Vec<u8>) {
    oriented_slice(genome, w, span, 0, span, buf);
}

/// Set `buf` to oriented positions `[from, to)` of the window's span, reading only those
/// bases: on the `-` strand they are the `+` strand bases `[start + span - to,
/// start + span - from)`, reverse-complemented.
pub fn oriented_slice(
    genome: &Genome,
    w: &Window,
    span: u64,
    from: u64,
    to: u64,
    buf: &mut Vec<u8>,
) {
    debug_assert!(from <= to && to <= span);
    buf.clear();
    let base = genome.records()[w.rec as usize].offset + w.start;
    if w.minus {
        genome.codes_into(base + span - to, base + span - from, buf);
        buf.reverse();
        for c in buf.iter_mut() {
            *c ^= 1;
        }
    } else {
        genome.codes_into(base + from, base + to, buf);
    }
}

/// What to draw.
#[derive(Debug, Clone)]
pub struct SampleSpec {
    pub context_nt: usize,
    pub k: usize,
    /// Samples per split (train, val, test).
    pub counts: [u64; 3],
    pub strands: StrandMode,
    /// Reject train windows whose oriented sequence equals a val or test window's.
    pub dedup: bool,
    pub seed: u64,
}

impl SampleSpec {
    #[must_use]
    pub fn span(&self) -> u64 {
        (self.context_nt + self.k) as u64
    }
}

/// All-ACGT pieces of `areas` with room for at least one span, and the cumulative
/// number of window starts before each piece.
pub struct Candidates {
    pieces: Vec<Area>,
    cumulative: Vec<u64>,
    pub positions: u64,
}

impl Candidates {
    #[must_use]
    pub fn new(genome: &Genome, areas: &[Area], span: u64) -> Self {
        let mut pieces = Vec::new();
        let mut cumulative = Vec::new();
        let mut positions = 0u64;
        let mut last_rec = usize::MAX;
        let mut intervals = Vec::new();
        for a in areas {
            if a.rec != last_rec {
                intervals = genome.acgt_intervals(a.rec);
                last_rec = a.rec;
            }
            for &(s, e) in &intervals {
                let (s, e) = (s.max(a.start), e.min(a.end));
                if e >= s + span {
                    cumulative.push(positions);
                    positions += e - s - span + 1;
                    pieces.push(Area {
                        rec: a.rec,
                        start: s,
                        end: e,
                    });
                }
            }
        }
        Candidates {
            pieces,
            cumulative,
            positions,
        }
    }

    /// Record and start of candidate position `p < positions`.
    #[must_use]
    pub fn locate(&self, p: u64) -> (usize, u64) {
        let i = self.cumulative.partition_point(|&c| c <= p) - 1;
        let piece = self.pieces[i];
        (piece.rec, piece.start + (p - self.cumulative[i]))
    }
}

/// 64-bit hash of the oriented codes of a window's whole span.
fn span_hash(genome: &Genome, w: &Window, span: u64, buf: &mut Vec<u8>) -> u64 {
    oriented_span(genome, w, span, buf);
    let mut h = 0x5EED_u64;
    for chunk in buf.chunks(32) {
        let word = chunk.iter().fold(0u64, |acc, &c| acc << 2 | u64::from(c));
        h = mix64(h ^ word).wrapping_add(chunk.len() as u64);
    }
    h
}

/// Result of [`sample_windows`].
#[derive(Debug, Clone)]
pub struct Sampled {
    /// Train windows, then val, then test; each split in drawing order.
    pub windows: Vec<Window>,
    /// Candidate positions of each split.
    pub available: [u64; 3],
    /// Train candidates rejected as exact duplicates of a val/test window.
    pub duplicates_rejected: u64,
}

/// Exact-duplicate filter for `dedup`: hashes of the val/test windows' oriented spans.
struct HeldOut {
    hashes: HashSet<u64, U64Build>,
    buf: Vec<u8>,
    rejected: u64,
}

impl HeldOut {
    /// Whether to keep `w`: records val/test windows, rejects train duplicates of them.
    fn keep(&mut self, genome: &Genome, w: &Window, span: u64) -> bool {
        let h = span_hash(genome, w, span, &mut self.buf);
        if w.split != 0 {
            self.hashes.insert(h);
            true
        } else if self.hashes.contains(&h) {
            self.rejected += 1;
            false
        } else {
            true
        }
    }
}

/// Draw `spec.counts[code]` windows of one split.
fn draw_split(
    genome: &Genome,
    cands: &Candidates,
    code: usize,
    spec: &SampleSpec,
    mut held_out: Option<&mut HeldOut>,
) -> Result<Vec<Window>> {
    let per_pos = spec.strands.count();
    let want = spec.counts[code];
    let mut rng = SplitMix64::stream(spec.seed, PURPOSE_SAMPLE + code as u64);
    let mut shuffle = SparseShuffle::new(cands.positions * per_pos);
    let mut out = Vec::with_capacity(want as usize);
    while (out.len() as u64) < want {
        let Some(index) = shuffle.next(&mut rng) else {
            let rejected = held_out.as_ref().map_or(0, |h| h.rejected);
            return Err(Error::invalid(format!(
                "n_train = {want} but only {} train windows remain after removing {rejected} \
                 exact duplicates of val/test windows",
                out.len()
            )));
        };
        let (rec, start) = cands.locate(index / per_pos);
        let w = Window {
            rec: rec as u32,
            start,
            minus: spec.strands.minus(index),
            split: code as u8,
        };
        if held_out
            .as_deref_mut()
            .is_none_or(|h| h.keep(genome, &w, spec.span()))
        {
            out.push(w);
        }
    }
    Ok(out)
}

/// Draw the windows of every split.
pub fn sample_windows(
    genome: &Genome,
    areas: &[Vec<Area>; 3],
    spec: &SampleSpec,
) -> Result<Sampled> {
    crate::vocab::check_k(spec.k)?;
    if spec.context_nt == 0 {
        return Err(Error::invalid("context_nt must be at least 1"));
    }
    let span = spec.span();
    let cands: Vec<Candidates> = areas
        .iter()
        .map(|a| Candidates::new(genome, a, span))
        .collect();
    let available = [0, 1, 2].map(|i| cands[i].positions * spec.strands.count());
    for code in 0..3 {
        if spec.counts[code] > available[code] {
            return Err(Error::invalid(format!(
                "n_{} = {} but the {} split holds only {} windows of {span} ACGT-only \
                 bases (context_nt + k) on the requested strands",
                SPLIT_NAMES[code], spec.counts[code], SPLIT_NAMES[code], available[code]
            )));
        }
    }
    let mut held_out = spec.dedup.then(|| HeldOut {
        hashes: HashSet::default(),
        buf: Vec::with_capacity(span as usize),
        rejected: 0,
    });
    // Val and test first, so that train can be checked against them.
    let val = draw_split(genome, &cands[1], 1, spec, held_out.as_mut())?;
    let test = draw_split(genome, &cands[2], 2, spec, held_out.as_mut())?;
    let mut windows = draw_split(genome, &cands[0], 0, spec, held_out.as_mut())?;
    windows.extend(val);
    windows.extend(test);
    Ok(Sampled {
        windows,
        available,
        duplicates_rejected: held_out.map_or(0, |h| h.rejected),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_published_values() {
        // First outputs for seed 0 (reference implementation by Vigna).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn sparse_shuffle_is_a_permutation() {
        let mut rng = SplitMix64::new(7);
        let mut s = SparseShuffle::new(1000);
        let mut seen: Vec<u64> = std::iter::from_fn(|| s.next(&mut rng)).collect();
        assert_eq!(seen.len(), 1000);
        seen.sort_unstable();
        assert!(seen.iter().enumerate().all(|(i, &v)| v == i as u64));
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = SplitMix64::new(1);
        for n in [1u64, 2, 3, 7, 1 << 40, u64::MAX] {
            for _ in 0..100 {
                assert!(rng.below(n) < n);
            }
        }
    }
}
