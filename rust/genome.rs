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

    fn close_runs(&mut self) {
        if let Some((start, byte)) = self.amb_open.take() {
            self.ambiguous.push(Run {
                start,
                end: self.total,
                byte,
            });
        }
        if let Some(start) = self.soft_open.take() {
            self.soft.push(Run {
                start,
                end: self.total,
                byte: 0,
            });
        }
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

    fn bases(&mut self, chunk: &[u8]) -> std::result::Result<(), BadByte> {
        for (offset, &byte) in chunk.iter().enumerate() {
            let c = CLASS[byte as usize];
            if c & NOT_SEQ_MASK != 0 {
                if c == SKIP {
                    continue;
                }
                debug_assert_eq!(c, INVALID);
                return Err(BadByte { offset, byte });
            }
            let upper = byte.to_ascii_uppercase();
            if c & NON_ACGT == 0 {
                if let Some((start, b)) = self.amb_open.take() {
                    self.ambiguous.push(Run {
                        start,
                        end: self.total,
                        byte: b,
                    });
                }
            } else {
                match self.amb_open {
                    Some((_, b)) if b == upper => {}
                    Some((start, b)) => {
                        self.ambiguous.push(Run {
                            start,
                            end: self.total,
                            byte: b,
                        });
                        self.amb_open = Some((self.total, upper));
                    }
                    None => self.amb_open = Some((self.total, upper)),
                }
                if upper == b'N' {
                    self.class_counts[15] += 1;
                }
            }
            if c & LOWER == 0 {
                if let Some(start) = self.soft_open.take() {
                    self.soft.push(Run {
                        start,
                        end: self.total,
                        byte: 0,
                    });
                }
            } else if self.soft_open.is_none() {
                self.soft_open = Some(self.total);
            }
            self.class_counts[(c & 0x0f) as usize] += 1;
            self.push_code(if c & NON_ACGT == 0 { c & 3 } else { 0 });
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
    pub fn open(path: &Path, opts: ReadOptions, progress: Option<Progress<'_>>) -> Result<Self> {
        let hint = std::fs::metadata(path).map_or(0, |m| m.len());
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
