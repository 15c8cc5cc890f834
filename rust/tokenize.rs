//! Whole-file tokenization: FASTA records straight to token-id arrays, in memory or
//! streamed to one memory-mappable `.npy` per record.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fasta::{self, BadByte, Progress, ReadOptions, ReadSummary, SeqSink};
use crate::kmer::{LineJoiner, Rolling, TokenId, Tokenizer};
use crate::npy::NpyWriter;

/// Tokens flushed to disk at a time when streaming.
const FLUSH_TOKENS: usize = 1 << 20;
/// Tokens of a record after which its in-memory buffer is reserved for the whole file.
const RESERVE_AFTER: usize = 1 << 20;

/// Token ids of one record.
#[derive(Debug, Clone)]
pub struct RecordTokens<T> {
    pub name: String,
    pub bases: u64,
    pub n_unk: u64,
    pub ids: Vec<T>,
}

/// One record written to disk.
#[derive(Debug, Clone)]
pub struct RecordFile {
    pub name: String,
    pub file: PathBuf,
    pub bases: u64,
    pub n_tokens: u64,
    pub n_unk: u64,
}

/// Where a record's ids go.
trait Emitter<T> {
    fn begin(&mut self, name: &str) -> Result<()>;
    /// Take ids from `buf` (and clear it) when `force` or when it is large.
    fn flush(&mut self, buf: &mut Vec<T>, force: bool) -> Result<()>;
    fn end(&mut self, bases: u64, n_unk: u64) -> Result<()>;
}

struct TokenSink<'t, T, E> {
    tok: &'t Tokenizer,
    state: Rolling,
    buf: Vec<T>,
    n_unk: u64,
    emitter: E,
    lines: LineJoiner,
    /// Tokens to reserve once a record turns out to be large (0 = let it grow).
    reserve: usize,
    /// Whether the current record's buffer was already reserved.
    reserved: bool,
}

impl<T: TokenId, E: Emitter<T>> SeqSink for TokenSink<'_, T, E> {
    fn begin(&mut self, name: &str, _description: &str) -> Result<()> {
        self.state = self.tok.rolling();
        self.n_unk = 0;
        self.buf.clear();
        self.reserved = false;
        self.emitter.begin(name)
    }

    fn bases(&mut self, chunk: &[u8]) -> std::result::Result<(), BadByte> {
        self.n_unk += self
            .lines
            .push(self.tok, &mut self.state, chunk, &mut self.buf)?;
        if !self.reserved && self.buf.len() >= RESERVE_AFTER {
            // Growing a large buffer step by step copies it each time it outgrows its
            // place; reserving costs only address space until pages are touched. Small
            // records (contigs) never get here. A failed reservation is fine: the
            // buffer then grows as usual.
            self.reserved = true;
            let _ = self.buf.try_reserve(self.reserve);
        }
        if self.buf.len() >= FLUSH_TOKENS {
            // I/O errors surface at the next `end`, which flushes again.
            let _ = self.emitter.flush(&mut self.buf, false);
        }
        Ok(())
    }

    fn end(&mut self) -> Result<()> {
        self.n_unk += self.lines.finish(self.tok, &mut self.state, &mut self.buf);
        self.emitter.flush(&mut self.buf, true)?;
        self.emitter.end(self.state.bases(), self.n_unk)
    }
}

/// Collects every record's ids in memory.
struct InMemory<T> {
    records: Vec<RecordTokens<T>>,
}

impl<T: TokenId> Emitter<T> for InMemory<T> {
    fn begin(&mut self, name: &str) -> Result<()> {
        self.records.push(RecordTokens {
            name: name.to_owned(),
            bases: 0,
            n_unk: 0,
            ids: Vec::new(),
        });
        Ok(())
    }

    fn flush(&mut self, buf: &mut Vec<T>, force: bool) -> Result<()> {
        if force {
            let rec = self.records.last_mut().expect("record begun");
            if rec.ids.is_empty() {
                rec.ids = std::mem::take(buf);
            } else {
                rec.ids.append(buf);
            }
        }
        Ok(())
    }

    fn end(&mut self, bases: u64, n_unk: u64) -> Result<()> {
        let rec = self.records.last_mut().expect("record begun");
        rec.bases = bases;
        rec.n_unk = n_unk;
        rec.ids.shrink_to_fit();
        Ok(())
    }
}

/// Streams each record to `<out_dir>/<safe name>.npy`.
struct ToNpy {
    out_dir: PathBuf,
    descr: &'static str,
    itemsize: usize,
    writer: Option<(String, NpyWriter)>,
    error: Option<Error>,
    used: HashSet<String>,
    files: Vec<RecordFile>,
}

/// File stem for a record name: safe characters only, unique within the run.
fn file_stem(name: &str, used: &mut HashSet<String>) -> String {
    let mut stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.starts_with('.') {
        stem.insert(0, '_');
    }
    if stem == "manifest" || used.contains(&stem.to_ascii_lowercase()) {
        let base = stem.clone();
        let mut i = 2;
        while used.contains(&format!("{base}_{i}").to_ascii_lowercase()) {
            i += 1;
        }
        stem = format!("{base}_{i}");
    }
    used.insert(stem.to_ascii_lowercase());
    stem
}

fn as_bytes<T: TokenId>(ids: &[T]) -> &[u8] {
    // SAFETY: TokenId is only implemented for u8/u16/u32, plain integers without padding;
    // the files are little-endian, which the crate asserts at compile time below.
    unsafe { std::slice::from_raw_parts(ids.as_ptr().cast::<u8>(), std::mem::size_of_val(ids)) }
}

#[cfg(not(target_endian = "little"))]
compile_error!("dnakmer writes little-endian .npy files and supports little-endian targets only");

impl<T: TokenId> Emitter<T> for ToNpy {
    fn begin(&mut self, name: &str) -> Result<()> {
        let stem = file_stem(name, &mut self.used);
        let path = self.out_dir.join(format!("{stem}.npy"));
        self.writer = Some((
            name.to_owned(),
            NpyWriter::create(&path, self.descr, self.itemsize)?,
        ));
        Ok(())
    }

    fn flush(&mut self, buf: &mut Vec<T>, force: bool) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let (_, w) = self.writer.as_mut().expect("record begun");
        let r = w.write_bytes(as_bytes(buf));
        buf.clear();
        match r {
            Err(e) if !force => {
                self.error = Some(e);
                Ok(())
            }
            other => other,
        }
    }

    fn end(&mut self, bases: u64, n_unk: u64) -> Result<()> {
        let (name, w) = self.writer.take().expect("record begun");
        let n_tokens = w.len();
        let file = w.finish()?;
        self.files.push(RecordFile {
            name,
            file,
            bases,
            n_tokens,
            n_unk,
        });
        Ok(())
    }
}

/// Upper estimate of the tokens of one record of `path`: its size, or four times
/// that for a compressed file (DNA gzips to about a quarter).
fn reserve_hint(path: &Path) -> usize {
    // Only regular files: peeking at a pipe would take bytes away from the reader.
    let size = match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => meta.len() as usize,
        _ => return 0,
    };
    let mut magic = [0u8; 2];
    let gzip = std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b];
    if gzip {
        size.saturating_mul(4)
    } else {
        size
    }
}

/// Tokenize every record of a FASTA file into memory.
pub fn tokenize_fasta<T: TokenId>(
    path: &Path,
    tok: &Tokenizer,
    opts: ReadOptions,
    progress: Option<Progress<'_>>,
) -> Result<(Vec<RecordTokens<T>>, ReadSummary)> {
    let mut sink = TokenSink {
        tok,
        state: tok.rolling(),
        buf: Vec::new(),
        n_unk: 0,
        emitter: InMemory {
            records: Vec::new(),
        },
        lines: LineJoiner::default(),
        reserve: reserve_hint(path),
        reserved: false,
    };
    let summary = fasta::read_fasta(path, opts, &mut sink, progress)?;
    Ok((sink.emitter.records, summary))
}

/// Tokenize every record of a FASTA file into `<out_dir>/<record>.npy` files, with
/// bounded memory. On error no file of this call is left behind: a partial record is
/// never renamed into place and the records already finished are removed, so a failed
/// run leaves the directory as it found it.
pub fn tokenize_fasta_to_npy<T: TokenId>(
    path: &Path,
    tok: &Tokenizer,
    out_dir: &Path,
    opts: ReadOptions,
    progress: Option<Progress<'_>>,
) -> Result<(Vec<RecordFile>, ReadSummary)> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let width = tok.width();
    let mut sink = TokenSink::<T, ToNpy> {
        tok,
        state: tok.rolling(),
        buf: Vec::with_capacity(FLUSH_TOKENS * 2),
        n_unk: 0,
        emitter: ToNpy {
            out_dir: out_dir.to_path_buf(),
            descr: width.descr(),
            itemsize: std::mem::size_of::<T>(),
            writer: None,
            error: None,
            used: HashSet::new(),
            files: Vec::new(),
        },
        lines: LineJoiner::default(),
        reserve: 0,
        reserved: false,
    };
    match fasta::read_fasta(path, opts, &mut sink, progress) {
        Ok(summary) => Ok((sink.emitter.files, summary)),
        Err(e) => {
            for f in &sink.emitter.files {
                let _ = std::fs::remove_file(&f.file);
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn memory_and_disk_agree() {
        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        f.write_all(b">r1 x\nACGTACGTNACG\nTTGA\n>r/2\nAC\n>r_2\nACGTAAAA\n")
            .expect("write");
        let tok = Tokenizer::dnabert(3, 1).expect("tok");
        let (recs, _) =
            tokenize_fasta::<u8>(f.path(), &tok, ReadOptions::default(), None).expect("mem");
        assert_eq!(recs.len(), 3);
        assert_eq!(
            recs[0].ids,
            tok.encode::<u8>(b"ACGTACGTNACGTTGA").expect("enc")
        );
        assert_eq!(recs[0].n_unk, 3);
        assert!(recs[1].ids.is_empty());
        let dir = tempfile::tempdir().expect("dir");
        let (files, _) =
            tokenize_fasta_to_npy::<u8>(f.path(), &tok, dir.path(), ReadOptions::default(), None)
                .expect("npy");
        assert_eq!(files[1].file.file_name().expect("name"), "r_2.npy");
        assert_eq!(files[2].file.file_name().expect("name"), "r_2_2.npy");
        let bytes = std::fs::read(&files[0].file).expect("read");
        assert_eq!(&bytes[128..], recs[0].ids.as_slice());
    }

    #[test]
    fn a_failed_run_leaves_no_file_behind() {
        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        f.write_all(b">ok\nACGTACGT\n>bad\nACGT\nAC!T\n")
            .expect("write");
        let tok = Tokenizer::dnabert(3, 1).expect("tok");
        let dir = tempfile::tempdir().expect("dir");
        let err =
            tokenize_fasta_to_npy::<u8>(f.path(), &tok, dir.path(), ReadOptions::default(), None)
                .expect_err("bad byte");
        assert!(err.to_string().contains("record 'bad'"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }
}
