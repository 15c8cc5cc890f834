//! An in-memory genome: bases packed 2 bits each, plus runs of non-ACGT characters and
//! of lowercase (soft-masked) bases, so 3.1 Gbp fit in well under 1 GB.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::alphabet::{BASES, CLASS, INVALID, LOWER, NON_ACGT, NOT_SEQ_MASK, SKIP};
use crate::error::{Error, Result};
use crate::fasta::{self, BadByte, Progress, ReadOptions, ReadSummary, SeqSink};

/// Base composition of a record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BaseCounts {
    pub a: u64,
    pub c: u64,
    pub g: u64,
    pub t: u64,
    pub n: u64,
    /// IUPAC codes other than N, and `-`, `*`, `.`.
    pub other: u64,
    /// Lowercase characters of any kind.
    pub softmasked: u64,
}

/// One record of a genome.
#[derive(Debug, Clone)]
pub struct Record {
    pub name: String,
    pub description: String,
    pub len: u64,
    /// Global offset of the record's first base.
    pub offset: u64,
    pub counts: BaseCounts,
}

/// A run of identical non-ACGT characters (stored uppercase) at global positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub start: u64,
    pub end: u64,
    pub byte: u8,
}

/// A genome held in memory.
#[derive(Debug, Clone)]
pub struct Genome {
    path: PathBuf,
    records: Vec<Record>,
    index: HashMap<String, usize>,
    packed: Vec<u8>,
    /// Non-ACGT runs, sorted, never spanning two records.
    ambiguous: Vec<Run>,
    /// Lowercase runs (byte unused), sorted, never spanning two records.
    soft: Vec<Run>,
    summary: Option<ReadSummary>,
}

/// Bytes checked together on lines that are not all plain bases.
const BLOCK: usize = 32;

/// Packed bytes whose [`CODE_COUNTS`] fit 16-bit fields when summed: a byte adds at
/// most 4 to one field, and 4 * (2^14 - 1) = 65,532 < 2^16.
const MAX_QUADS: usize = (1 << 14) - 1;

/// Per packed byte of four codes, how many of each code it holds: code `c` counted in
/// bits `16c..16c+16`.
static CODE_COUNTS: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut i = 0;
        while i < 4 {
            table[byte] += 1 << (16 * ((byte >> (2 * i)) & 3));
            i += 1;
        }
        byte += 1;
    }
    table
};

/// `Some(lowercase)` when `bytes` holds only A/C/G/T, all in one case.
// Non-short-circuit comparisons: vector compares, no branch per byte.
#[allow(clippy::needless_bitwise_bool)]
fn uniform_acgt(bytes: &[u8]) -> Option<bool> {
    let (mut ok, mut any_lower, mut all_lower) = (true, 0u8, 0x20u8);
    for &b in bytes {
        let upper = b & 0xDF;
        ok &= (upper == b'A') | (upper == b'C') | (upper == b'G') | (upper == b'T');
        any_lower |= b & 0x20;
        all_lower &= b & 0x20;
    }
    (ok && any_lower == all_lower).then_some(all_lower != 0)
}

/// Code (A=0, T=1, C=2, G=3) of an A/C/G/T byte of either case: bits 1-2 of the ASCII
/// code are 0, 1, 3, 2 for A, C, G, T; swapping them gives the code.
#[inline]
fn acgt_code(b: u8) -> u8 {
    let x = (b >> 1) & 3;
    ((x & 1) << 1) | (x >> 1)
}

/// [`acgt_code`] of the four bytes of `w` at once.
#[inline]
fn acgt_codes(w: u32) -> u32 {
    let x = (w >> 1) & 0x0303_0303;
    ((x & 0x0101_0101) << 1) | ((x >> 1) & 0x0101_0101)
}

/// Builds a [`Genome`] from FASTA records.
struct Builder {
    records: Vec<Record>,
    packed: Vec<u8>,
    cur: u8,
    total: u64,
    ambiguous: Vec<Run>,
    soft: Vec<Run>,
    amb_open: Option<(u64, u8)>,
    soft_open: Option<u64>,
    class_counts: [u64; 16],
}

impl Builder {
    fn new(capacity_bases: u64) -> Self {
        Builder {
            records: Vec::new(),
            packed: Vec::with_capacity((capacity_bases / 4) as usize + 1),
            cur: 0,
            total: 0,
            ambiguous: Vec::new(),
            soft: Vec::new(),
            amb_open: None,
            soft_open: None,
            class_counts: [0; 16],
        }
    }

    #[inline]
    fn push_code(&mut self, code: u8) {
        let shift = (self.total & 3) * 2;
        self.cur |= code << shift;
        self.total += 1;
        if self.total.trailing_zeros() >= 2 {
            self.packed.push(self.cur);
            self.cur = 0;
        }
    }

    /// One sequence byte: its code, counts and runs; `Err` for a byte that may not
    /// appear in a sequence.
    fn push_byte(&mut self, byte: u8) -> std::result::Result<(), ()> {
        let c = CLASS[byte as usize];
        if c & NOT_SEQ_MASK != 0 {
            if c == SKIP {
                return Ok(());
            }
            debug_assert_eq!(c, INVALID);
            return Err(());
        }
        let upper = byte.to_ascii_uppercase();
        if c & NON_ACGT == 0 {
            self.end_ambiguous();
        } else {
            if self.amb_open.is_some_and(|(_, b)| b != upper) {
                self.end_ambiguous();
            }
            self.amb_open.get_or_insert((self.total, upper));
            if upper == b'N' {
                self.class_counts[15] += 1;
            }
        }
        self.soft_masked(c & LOWER != 0);
        self.class_counts[(c & 0x0f) as usize] += 1;
        self.push_code(if c & NON_ACGT == 0 { c & 3 } else { 0 });
        Ok(())
    }

    /// Bases that are all A/C/G/T, all lowercase or all uppercase: no ambiguous run,
    /// one soft-masking state, codes packed and counted four at a time.
    fn push_plain(&mut self, bases: &[u8], lower: bool) {
        if bases.is_empty() {
            return;
        }
        self.end_ambiguous();
        self.soft_masked(lower);
        let mut counts = [0u64; 4];
        let mut rest = bases;
        while self.total & 3 != 0 {
            let Some((&b, tail)) = rest.split_first() else {
                break;
            };
            let code = acgt_code(b);
            counts[code as usize] += 1;
            self.push_code(code);
            rest = tail;
        }
        let quads = rest.chunks_exact(4);
        let tail = quads.remainder();
        let mut fields = 0u64;
        for group in rest[..rest.len() - tail.len()].chunks(4 * MAX_QUADS) {
            self.packed.extend(group.chunks_exact(4).map(|q| {
                // Four bases (first in the low byte) to four codes, one per byte, to
                // one byte of four 2-bit codes (first in the low bits).
                let codes = acgt_codes(u32::from_le_bytes([q[0], q[1], q[2], q[3]]));
                let byte = (codes | codes >> 6 | codes >> 12 | codes >> 18) as u8;
                fields += CODE_COUNTS[byte as usize];
                byte
            }));
            for (code, n) in counts.iter_mut().enumerate() {
                *n += (fields >> (16 * code)) & 0xFFFF;
            }
            fields = 0;
        }
        self.total += (rest.len() - tail.len()) as u64;
        for &b in tail {
            let code = acgt_code(b);
            counts[code as usize] += 1;
            self.push_code(code);
        }
        let case = if lower { 8 } else { 0 };
        for (code, n) in counts.into_iter().enumerate() {
            self.class_counts[case + code] += n;
        }
    }

    /// Close the run of non-ACGT characters, if one is open.
    fn end_ambiguous(&mut self) {
        if let Some((start, byte)) = self.amb_open.take() {
            self.ambiguous.push(Run {
                start,
                end: self.total,
                byte,
            });
        }
    }

    /// Whether the next base is lowercase: opens or closes a soft-masked run.
    fn soft_masked(&mut self, lower: bool) {
        if lower {
            self.soft_open.get_or_insert(self.total);
        } else if let Some(start) = self.soft_open.take() {
            self.soft.push(Run {
                start,
                end: self.total,
                byte: 0,
            });
        }
    }

    fn close_runs(&mut self) {
        self.end_ambiguous();
        self.soft_masked(false);
    }

    /// The builders of the pieces of a split read, in file order, as one. Each piece
    /// after the first starts on a whole packed byte: its bases are shifted by the bases
    /// before it, rounded up to a multiple of four (the up to three unused positions
    /// belong to no record).
    fn join(pieces: Vec<Builder>) -> Builder {
        let mut pieces = pieces.into_iter();
        let mut all = pieces.next().unwrap_or_else(|| Builder::new(0));
        for mut piece in pieces {
            if all.total & 3 != 0 {
                all.packed.push(all.cur);
                all.cur = 0;
                all.total = all.total.next_multiple_of(4);
            }
            let shift = all.total;
            let moved = |r: &Run| Run {
                start: r.start + shift,
                end: r.end + shift,
                byte: r.byte,
            };
            all.records.extend(piece.records.into_iter().map(|mut r| {
                r.offset += shift;
                r
            }));
            all.ambiguous.extend(piece.ambiguous.iter().map(moved));
            all.soft.extend(piece.soft.iter().map(moved));
            all.packed.append(&mut piece.packed);
            all.cur = piece.cur;
            all.total += piece.total;
        }
        all
    }

    fn finish(mut self, path: &Path, summary: ReadSummary) -> Genome {
        if self.total & 3 != 0 {
            self.packed.push(self.cur);
        }
        self.packed.shrink_to_fit();
        self.ambiguous.shrink_to_fit();
        self.soft.shrink_to_fit();
        let index = self
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        Genome {
            path: path.to_path_buf(),
            records: self.records,
            index,
            packed: self.packed,
            ambiguous: self.ambiguous,
            soft: self.soft,
            summary: Some(summary),
        }
    }
}

impl SeqSink for Builder {
    fn begin(&mut self, name: &str, description: &str) -> Result<()> {
        self.class_counts = [0; 16];
        self.records.push(Record {
            name: name.to_owned(),
            description: description.to_owned(),
            len: 0,
            offset: self.total,
            counts: BaseCounts::default(),
        });
        Ok(())
    }

    fn room(&mut self, bytes: usize) -> Result<()> {
        // Four bases a byte; amortised doubling, as `push` would do, but fallible.
        let need = bytes / 4 + 1;
        if self.packed.capacity() - self.packed.len() < need {
            let grow = need.max(self.packed.capacity());
            self.packed.try_reserve(grow).map_err(|_| {
                Error::OutOfMemory(format!(
                    "room for the genome's sequence ({} MiB more)",
                    grow >> 20
                ))
            })?;
        }
        Ok(())
    }

    fn bases(&mut self, chunk: &[u8]) -> std::result::Result<(), BadByte> {
        // Most lines hold only A/C/G/T of one case: packed in one step. Other lines go
        // by blocks, so that only the blocks holding an N, an IUPAC code, a case change
        // or a bad byte take the byte-by-byte path.
        if let Some(lower) = uniform_acgt(chunk) {
            self.push_plain(chunk, lower);
            return Ok(());
        }
        let mut at = 0;
        while at < chunk.len() {
            let block = &chunk[at..chunk.len().min(at + BLOCK)];
            match uniform_acgt(block) {
                Some(lower) => self.push_plain(block, lower),
                None => {
                    for (i, &byte) in block.iter().enumerate() {
                        self.push_byte(byte).map_err(|()| BadByte {
                            offset: at + i,
                            byte,
                        })?;
                    }
                }
            }
            at += block.len();
        }
        Ok(())
    }

    fn end(&mut self) -> Result<()> {
        self.close_runs();
        let cc = self.class_counts;
        let rec = self.records.last_mut().expect("record begun");
        rec.len = self.total - rec.offset;
        let lower: u64 = cc[8..12].iter().sum::<u64>() + cc[12];
        let non_acgt = cc[4] + cc[12];
        rec.counts = BaseCounts {
            a: cc[0] + cc[8],
            t: cc[1] + cc[9],
            c: cc[2] + cc[10],
            g: cc[3] + cc[11],
            n: cc[15],
            other: non_acgt - cc[15],
            softmasked: lower,
        };
        Ok(())
    }
}

impl Genome {
    /// Read a FASTA file (plain, gzip or BGZF) into memory.
    /// A plain file read with `opts.threads > 1` is split at record headers and its
    /// pieces packed in parallel.
    pub fn open(path: &Path, opts: ReadOptions, progress: Option<Progress<'_>>) -> Result<Self> {
        let hint = std::fs::metadata(path).map_or(0, |m| m.len());
        let mut progress = progress;
        // The first piece gets room for the whole file (address space only), so that
        // the later pieces are appended to it without moving it; the others grow.
        let new = |first: u64| Builder::new(if first == 0 { hint } else { 0 });
        if let Some((pieces, summary)) =
            fasta::read_fasta_split(path, opts, new, fasta::reborrow(&mut progress))?
        {
            return Ok(Builder::join(pieces).finish(path, summary));
        }
        let mut builder = Builder::new(hint);
        let summary = fasta::read_fasta(path, opts, &mut builder, progress)?;
        Ok(builder.finish(path, summary))
    }

    /// Path the genome was read from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How the file was read (compression, hash, BGZF end-of-file marker).
    #[must_use]
    pub fn summary(&self) -> Option<&ReadSummary> {
        self.summary.as_ref()
    }

    /// Records in file order.
    #[must_use]
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Total bases.
    #[must_use]
    pub fn total_len(&self) -> u64 {
        self.records.iter().map(|r| r.len).sum()
    }

    /// Bytes of memory held by the sequence data.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.packed.capacity()
            + (self.ambiguous.capacity() + self.soft.capacity()) * std::mem::size_of::<Run>()
    }

    /// Index of a record by name.
    pub fn record_index(&self, name: &str) -> Result<usize> {
        self.index
            .get(name)
            .copied()
            .ok_or_else(|| Error::RecordNotFound(name.to_owned()))
    }

    /// Check `start..end` against a record and return its global range.
    fn global_range(&self, rec: usize, start: u64, end: Option<u64>) -> Result<(u64, u64)> {
        let r = &self.records[rec];
        let end = end.unwrap_or(r.len);
        if start > end || end > r.len {
            return Err(Error::invalid(format!(
                "interval [{start}, {end}) is outside record '{}' of length {}",
                r.name, r.len
            )));
        }
        Ok((r.offset + start, r.offset + end))
    }

    #[inline]
    fn code_at(&self, g: u64) -> u8 {
        (self.packed[(g >> 2) as usize] >> ((g & 3) * 2)) & 3
    }

    /// Runs of `runs` that overlap `[gs, ge)`.
    fn overlapping(runs: &[Run], gs: u64, ge: u64) -> &[Run] {
        let first = runs.partition_point(|r| r.end <= gs);
        let last = runs.partition_point(|r| r.start < ge);
        &runs[first..last.max(first)]
    }

    /// Base codes (0–3 = A/T/C/G, 4 = anything else) of `[start, end)` of record `rec`.
    pub fn codes(&self, rec: usize, start: u64, end: Option<u64>) -> Result<Vec<u8>> {
        let (gs, ge) = self.global_range(rec, start, end)?;
        let mut out = Vec::with_capacity((ge - gs) as usize);
        self.codes_into(gs, ge, &mut out);
        Ok(out)
    }

    /// Append the codes of global `[gs, ge)` to `out` (range already checked).
    pub fn codes_into(&self, gs: u64, ge: u64, out: &mut Vec<u8>) {
        let base = out.len();
        let mut g = gs;
        while g < ge && g & 3 != 0 {
            out.push(self.code_at(g));
            g += 1;
        }
        while g + 4 <= ge {
            let byte = self.packed[(g >> 2) as usize];
            out.extend_from_slice(&[byte & 3, (byte >> 2) & 3, (byte >> 4) & 3, byte >> 6]);
            g += 4;
        }
        while g < ge {
            out.push(self.code_at(g));
            g += 1;
        }
        for run in Self::overlapping(&self.ambiguous, gs, ge) {
            let s = (run.start.max(gs) - gs) as usize + base;
            let e = (run.end.min(ge) - gs) as usize + base;
            out[s..e].fill(4);
        }
    }

    /// The original text (case kept) of `[start, end)` of record `rec`.
    pub fn fetch(&self, rec: usize, start: u64, end: Option<u64>) -> Result<Vec<u8>> {
        let (gs, ge) = self.global_range(rec, start, end)?;
        let mut out = Vec::with_capacity((ge - gs) as usize);
        self.codes_into(gs, ge, &mut out);
        for b in &mut out {
            *b = BASES[(*b & 3) as usize];
        }
        for run in Self::overlapping(&self.ambiguous, gs, ge) {
            let s = (run.start.max(gs) - gs) as usize;
            let e = (run.end.min(ge) - gs) as usize;
            out[s..e].fill(run.byte);
        }
        for run in Self::overlapping(&self.soft, gs, ge) {
            let s = (run.start.max(gs) - gs) as usize;
            let e = (run.end.min(ge) - gs) as usize;
            out[s..e].make_ascii_lowercase();
        }
        Ok(out)
    }

    /// Maximal intervals `[start, end)` (record coordinates) of record `rec` that hold
    /// only A/C/G/T.
    #[must_use]
    pub fn acgt_intervals(&self, rec: usize) -> Vec<(u64, u64)> {
        let r = &self.records[rec];
        let (gs, ge) = (r.offset, r.offset + r.len);
        let mut out = Vec::new();
        let mut cursor = gs;
        for run in Self::overlapping(&self.ambiguous, gs, ge) {
            if run.start > cursor {
                out.push((cursor - gs, run.start - gs));
            }
            cursor = run.end;
        }
        if ge > cursor {
            out.push((cursor - gs, ge - gs));
        }
        out
    }
}

/// A genome read from FASTA text, for unit tests.
#[cfg(test)]
pub(crate) fn genome_from_text(text: &[u8]) -> Genome {
    use std::io::Write;
    let mut f = tempfile::NamedTempFile::new().expect("tmp");
    f.write_all(text).expect("write");
    Genome::open(f.path(), ReadOptions::default(), None).expect("open")
}

#[cfg(test)]
mod tests {
    use super::genome_from_text as genome;
    use super::{acgt_code, uniform_acgt, Builder, SeqSink};
    use crate::test_rng::{Mix, XorShift};

    /// Everything a builder holds, to compare two of them.
    fn state(b: &Builder) -> impl PartialEq + std::fmt::Debug {
        (
            b.packed.clone(),
            b.cur,
            b.total,
            b.ambiguous.clone(),
            b.soft.clone(),
            b.amb_open,
            b.soft_open,
            b.class_counts,
        )
    }

    #[test]
    fn plain_lines_and_blocks_pack_as_byte_by_byte() {
        let mut rng = XorShift(0x6e0e);
        for round in 0..300 {
            let mix = Mix {
                one_in: [3, 20, 200][round % 3],
                n_run: 40,
                acgt_run: [5, 60, 700][round % 3],
                stray: b"\r\t",
            };
            let len = rng.below(3000) as usize;
            let text = rng.sequence(len, &mix);
            let (mut fast, mut slow) = (Builder::new(0), Builder::new(0));
            fast.begin("r", "").expect("begin");
            slow.begin("r", "").expect("begin");
            let mut at = 0;
            while at < text.len() {
                let n = (rng.below(200) as usize + 1).min(text.len() - at);
                fast.bases(&text[at..at + n]).expect("valid");
                for &b in &text[at..at + n] {
                    slow.push_byte(b).expect("valid");
                }
                at += n;
            }
            assert_eq!(state(&fast), state(&slow), "round {round}");
        }
    }

    #[test]
    fn codes_and_uniform_lines() {
        for (b, code) in [(b'A', 0), (b'T', 1), (b'C', 2), (b'G', 3)] {
            assert_eq!(acgt_code(b), code);
            assert_eq!(acgt_code(b.to_ascii_lowercase()), code);
        }
        assert_eq!(uniform_acgt(b"ACGTTGCA"), Some(false));
        assert_eq!(uniform_acgt(b"acgttgca"), Some(true));
        assert_eq!(uniform_acgt(b"ACGTtgca"), None);
        assert_eq!(uniform_acgt(b"ACGNTGCA"), None);
        assert_eq!(uniform_acgt(b"ACG\rT"), None);
    }

    #[test]
    fn long_single_base_lines_are_counted_exactly() {
        // One line of one base, longer than a 16-bit counter holds (a plain, packed run).
        for (n, upper) in [(65_536usize, true), (70_000, true), (262_147, false)] {
            let base = if upper { b'C' } else { b'g' };
            let mut text = b">x\n".to_vec();
            text.extend(std::iter::repeat_n(base, n));
            text.extend_from_slice(b"\nAT\n");
            let g = genome(&text);
            let c = g.records()[0].counts;
            let (c_count, g_count) = if upper { (n as u64, 0) } else { (0, n as u64) };
            assert_eq!(
                (c.a, c.c, c.g, c.t),
                (1, c_count, g_count, 1),
                "{n} x {base}"
            );
            assert_eq!(c.softmasked, if upper { 0 } else { n as u64 });
        }
    }

    #[test]
    fn fetch_roundtrips_text_and_counts() {
        let g = genome(b">a\nACGTNNryacgtT\nGG-*\n>b\n\n>c\nnnnAC\n");
        assert_eq!(g.records().len(), 3);
        assert_eq!(g.fetch(0, 0, None).expect("a"), b"ACGTNNryacgtTGG-*");
        assert_eq!(g.fetch(0, 3, Some(9)).expect("a"), b"TNNrya");
        assert_eq!(g.fetch(2, 0, None).expect("c"), b"nnnAC");
        assert!(g.fetch(1, 0, None).expect("b").is_empty());
        let c = g.records()[0].counts;
        assert_eq!(
            (c.a, c.c, c.g, c.t, c.n, c.other, c.softmasked),
            (2, 2, 4, 3, 2, 4, 6)
        );
        assert_eq!(
            g.codes(0, 0, Some(8)).expect("codes"),
            vec![0, 2, 3, 1, 4, 4, 4, 4]
        );
        assert_eq!(g.acgt_intervals(0), vec![(0, 4), (8, 15)]);
        assert_eq!(g.acgt_intervals(2), vec![(3, 5)]);
        assert!(g.fetch(0, 5, Some(100)).is_err());
    }
}
