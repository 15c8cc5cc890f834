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
/// Tokens of a record after which its in-memory buffer is reserved for the rest of the
/// file; the record after such a record is reserved as it begins, as is the first.
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
    /// Upper bound on the tokens of the records not yet finished, reserved at once
    /// when a record turns out to be large (0 = let it grow).
    reserve: usize,
    /// Whether the current record's buffer was already reserved.
    reserved: bool,
    /// Whether the record before this one (if any) was large, so that this one is
    /// likely to be large too and is reserved when it begins.
    expect_large: bool,
}

impl<T: TokenId, E: Emitter<T>> SeqSink for TokenSink<'_, T, E> {
    fn begin(&mut self, name: &str, _description: &str) -> Result<()> {
        self.state = self.tok.rolling();
        self.n_unk = 0;
        self.buf.clear();
        // Chromosome-scale records get their room at once, so their first ids are not
        // copied as the buffer grows; a file of many small records (contigs) only
        // pays for this on its first record.
        self.reserved = self.expect_large;
        if self.reserved {
            reserve_tokens(&mut self.buf, self.reserve);
        }
        self.emitter.begin(name)
    }

    fn room(&mut self, bytes: usize) -> Result<()> {
        // At most one id per base (the lines taken at once are capped as in `lines`).
        let need = bytes.min(FLUSH_TOKENS / 2) + 1;
        if self.buf.capacity() - self.buf.len() < need {
            let grow = need.max(self.buf.capacity());
            self.buf.try_reserve(grow).map_err(|_| {
                Error::OutOfMemory(format!(
                    "room for a record's token ids ({} MiB more)",
                    (grow * std::mem::size_of::<T>()) >> 20
                ))
            })?;
        }
        Ok(())
    }

    fn bases(&mut self, chunk: &[u8]) -> std::result::Result<(), BadByte> {
        self.n_unk += self
            .lines
            .push(self.tok, &mut self.state, chunk, &mut self.buf)?;
        self.after_push();
        Ok(())
    }

    fn lines(&mut self, text: &[u8]) -> (usize, u64) {
        // At most half a flush of bases at a time, so that a streamed record's buffer
        // (which holds less than a flush between calls) stays within the room
        // reserved for it; the parser offers the rest in the next call.
        let text = &text[..text.len().min(FLUSH_TOKENS / 2)];
        let taken = self
            .lines
            .push_lines(self.tok, &mut self.state, text, &mut self.buf);
        self.n_unk += taken.n_unk;
        self.after_push();
        (taken.bytes, taken.lines)
    }

    fn end(&mut self) -> Result<()> {
        self.n_unk += self.lines.finish(self.tok, &mut self.state, &mut self.buf);
        // Every base of a plain file is at least one byte of it, so the bytes left
        // bound the tokens of the records after this one.
        self.reserve = self.reserve.saturating_sub(self.state.bases() as usize);
        self.expect_large = self.state.bases() >= RESERVE_AFTER as u64;
        self.emitter.flush(&mut self.buf, true)?;
        self.emitter.end(self.state.bases(), self.n_unk)
    }

    fn release(&mut self) {
        self.buf = Vec::new();
    }
}

impl<T: TokenId, E: Emitter<T>> TokenSink<'_, T, E> {
    /// After ids were appended: reserve a large record's whole buffer once, and hand a
    /// full buffer to the emitter.
    fn after_push(&mut self) {
        if !self.reserved && self.buf.len() >= RESERVE_AFTER {
            // Growing a large buffer step by step copies it each time it outgrows its
            // place; reserving costs only address space until pages are touched. Small
            // records (contigs) never get here.
            self.reserved = true;
            reserve_tokens(&mut self.buf, self.reserve);
        }
        if self.buf.len() >= FLUSH_TOKENS {
            // I/O errors surface at the next `end`, which flushes again.
            let _ = self.emitter.flush(&mut self.buf, false);
        }
    }
}

/// Size of a transparent huge page on x86-64 (and on arm64 with 4 KiB pages).
const HUGE_PAGE: usize = 2 << 20;
/// Size of the smallest memory page: bytes this close before or after an allocation
/// are in the same page as its first or last byte, so in the same mapping.
const PAGE: usize = 4096;
/// Bytes a memory allocator keeps before a large allocation (glibc: 16), with room.
const ALLOC_HEADER: usize = 64;

/// Make room for `total` tokens in `buf` in one step (nothing happens when `total` is
/// not more than it holds, or when the allocation fails: the buffer then grows as
/// usual), and ask the kernel to back the room with huge pages.
///
/// Large requests are rounded up so that, with the allocator's header, they fill
/// whole huge pages: glibc serves them as one mapping of that size, which Linux
/// places on a huge-page boundary, so the first and the last 2 MiB of the buffer can
/// be huge pages too instead of up to 1,024 separately faulted 4 KiB pages (a fifth of
/// the time of tokenizing a bacterial genome). The rounding costs address space only.
fn reserve_tokens<T>(buf: &mut Vec<T>, total: usize) {
    let size = std::mem::size_of::<T>().max(1);
    let total = match total.checked_mul(size) {
        Some(bytes) if bytes >= HUGE_PAGE => bytes
            .checked_add(ALLOC_HEADER)
            .and_then(|b| b.checked_next_multiple_of(HUGE_PAGE))
            .map_or(total, |b| (b - ALLOC_HEADER) / size),
        _ => total,
    };
    if total > buf.len() && buf.try_reserve_exact(total - buf.len()).is_ok() {
        advise_huge_pages(buf);
    }
}

/// The huge-page-aligned range to advise for an allocation at `[start, end)`: its
/// whole huge pages, widened to the huge-page boundary just before `start` or just
/// after `end` when that boundary is within the page holding the first or last byte
/// (which then belongs to the same mapping). Empty (`lo >= hi`) when no huge page fits.
fn huge_page_range(start: usize, end: usize) -> (usize, usize) {
    let lo = if start % HUGE_PAGE < PAGE {
        start - start % HUGE_PAGE
    } else {
        start.next_multiple_of(HUGE_PAGE)
    };
    let above = end.next_multiple_of(HUGE_PAGE);
    let hi = if above - end < PAGE {
        above
    } else {
        end - end % HUGE_PAGE
    };
    (lo, hi)
}

/// Ask Linux to back `buf` with transparent huge pages: a large output array then costs
/// one page fault (and one zeroing) per 2 MiB instead of per 4 KiB, which otherwise
/// takes about a quarter of the time of a multi-gigabyte array. Where the first huge
/// page of the range also holds the allocator's header, its first 4 KiB page was
/// already touched, so the kernel would fill the rest of that huge page with 4 KiB
/// pages: it is collapsed into a huge page at once (`MADV_COLLAPSE`, Linux 6.1), which
/// keeps the contents. Kernels without huge pages, or with them switched off, refuse
/// the advice; results are not checked, as the buffer works the same either way.
#[cfg(target_os = "linux")]
fn advise_huge_pages<T>(buf: &mut Vec<T>) {
    let start = buf.as_ptr() as usize;
    let end = start + buf.capacity() * std::mem::size_of::<T>();
    let (lo, hi) = huge_page_range(start, end);
    if lo >= hi {
        return;
    }
    // SAFETY: [lo, hi) is the memory of `buf`'s allocation, plus at most the rest of
    // the pages holding its first and last byte, which are mapped with it. Neither
    // piece of advice unmaps memory or changes a byte of it (MADV_HUGEPAGE only
    // decides how untouched pages will be backed; MADV_COLLAPSE copies the contents
    // into the huge page), so every pointer into the range stays valid.
    unsafe {
        libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
        if lo < start {
            libc::madvise(lo as *mut libc::c_void, HUGE_PAGE, MADV_COLLAPSE);
        }
    }
}

/// `MADV_COLLAPSE` of Linux 6.1 (the libc crate names it for glibc targets only).
#[cfg(target_os = "linux")]
const MADV_COLLAPSE: libc::c_int = 25;

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages<T>(_buf: &mut Vec<T>) {}

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
    /// For one piece of a split read (its first byte): records go to hidden files named
    /// after the piece and renamed once every piece is done, as the final names depend
    /// on the records of the pieces before.
    piece: Option<u64>,
}

impl Drop for ToNpy {
    /// A piece of a split read that is dropped without its files being taken (the read
    /// failed somewhere) removes them.
    fn drop(&mut self) {
        if self.piece.is_some() {
            for f in &self.files {
                let _ = std::fs::remove_file(&f.file);
            }
        }
    }
}

/// Longest file stem taken from a record name: with the `.npy` suffix, a uniqueness
/// suffix and the temporary name's `.` and `.partial-<pid>` it stays well inside the
/// 255 bytes a file name may have.
const MAX_STEM: usize = 200;

/// File stem for a record name: safe characters only, at most [`MAX_STEM`] of them
/// (longer names are cut; the manifest keeps the whole name), unique within the run.
fn file_stem(name: &str, used: &mut HashSet<String>) -> String {
    let mut stem: String = name
        .chars()
        .take(MAX_STEM)
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
        let path = if let Some(first) = self.piece {
            let n = self.files.len();
            self.out_dir
                .join(format!(".dnakmer-{}-{first}-{n}.npy", std::process::id()))
        } else {
            let stem = file_stem(name, &mut self.used);
            self.out_dir.join(format!("{stem}.npy"))
        };
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

/// Tokenize every record of a FASTA file into memory. A plain file read with
/// `opts.threads > 1` is split at record headers and its pieces tokenized in parallel.
pub fn tokenize_fasta<T: TokenId>(
    path: &Path,
    tok: &Tokenizer,
    opts: ReadOptions,
    progress: Option<Progress<'_>>,
) -> Result<(Vec<RecordTokens<T>>, ReadSummary)> {
    let reserve = reserve_hint(path);
    let memory_sink = |first: u64| TokenSink {
        tok,
        state: tok.rolling(),
        buf: Vec::new(),
        n_unk: 0,
        emitter: InMemory {
            records: Vec::new(),
        },
        lines: LineJoiner::default(),
        // Every base of the records from `first` on is a byte after `first`.
        reserve: reserve.saturating_sub(usize::try_from(first).unwrap_or(usize::MAX)),
        reserved: false,
        expect_large: true,
    };
    let mut progress = progress;
    if let Some((sinks, summary)) =
        fasta::read_fasta_split(path, opts, memory_sink, fasta::reborrow(&mut progress))?
    {
        let records = sinks.into_iter().flat_map(|s| s.emitter.records).collect();
        return Ok((records, summary));
    }
    let mut sink = memory_sink(0);
    let summary = fasta::read_fasta(path, opts, &mut sink, progress)?;
    Ok((sink.emitter.records, summary))
}

/// Tokenize every record of a FASTA file into `<out_dir>/<record>.npy` files, with
/// bounded memory (per thread). On error no file of this call is left behind: a partial
/// record is never renamed into place and the records already finished are removed, so
/// a failed run leaves the directory as it found it. A plain file read with
/// `opts.threads > 1` is split at record headers and its pieces written in parallel.
pub fn tokenize_fasta_to_npy<T: TokenId>(
    path: &Path,
    tok: &Tokenizer,
    out_dir: &Path,
    opts: ReadOptions,
    progress: Option<Progress<'_>>,
) -> Result<(Vec<RecordFile>, ReadSummary)> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let mut progress = progress;
    let piece_sink = |first| {
        let mut sink = npy_sink::<T>(tok, out_dir);
        sink.emitter.piece = Some(first);
        sink
    };
    // On error the pieces' sinks are dropped, which removes their files.
    if let Some((sinks, summary)) =
        fasta::read_fasta_split(path, opts, piece_sink, fasta::reborrow(&mut progress))?
    {
        let pieces = sinks
            .into_iter()
            .map(|mut s| std::mem::take(&mut s.emitter.files))
            .collect();
        return name_pieces(out_dir, pieces).map(|files| (files, summary));
    }
    let mut sink = npy_sink::<T>(tok, out_dir);
    match fasta::read_fasta(path, opts, &mut sink, progress) {
        Ok(summary) => Ok((std::mem::take(&mut sink.emitter.files), summary)),
        Err(e) => {
            for f in &sink.emitter.files {
                let _ = std::fs::remove_file(&f.file);
            }
            Err(e)
        }
    }
}

/// Give the records of a split read their final file names, in file order (as a
/// sequential read names them); on failure remove every file of the call.
fn name_pieces(out_dir: &Path, pieces: Vec<Vec<RecordFile>>) -> Result<Vec<RecordFile>> {
    let mut used = HashSet::new();
    let mut done: Vec<RecordFile> = Vec::new();
    let mut files = pieces.into_iter().flatten();
    for mut f in files.by_ref() {
        let stem = file_stem(&f.name, &mut used);
        let dest = out_dir.join(format!("{stem}.npy"));
        if let Err(e) = std::fs::rename(&f.file, &dest) {
            let _ = std::fs::remove_file(&f.file);
            for f in files.chain(done) {
                let _ = std::fs::remove_file(&f.file);
            }
            return Err(Error::io(&dest, e));
        }
        f.file = dest;
        done.push(f);
    }
    Ok(done)
}

/// A sink that streams records to `.npy` files in `out_dir` through a buffer of
/// bounded size.
fn npy_sink<'t, T: TokenId>(tok: &'t Tokenizer, out_dir: &Path) -> TokenSink<'t, T, ToNpy> {
    TokenSink {
        tok,
        state: tok.rolling(),
        buf: Vec::with_capacity(FLUSH_TOKENS * 2),
        n_unk: 0,
        emitter: ToNpy {
            out_dir: out_dir.to_path_buf(),
            descr: tok.width().descr(),
            itemsize: std::mem::size_of::<T>(),
            writer: None,
            error: None,
            used: HashSet::new(),
            files: Vec::new(),
            piece: None,
        },
        lines: LineJoiner::default(),
        reserve: 0,
        reserved: false,
        expect_large: false,
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
        let mut used = HashSet::new();
        let long = "x".repeat(1000);
        let (a, b) = (
            file_stem(&format!("{long}A"), &mut used),
            file_stem(&format!("{long}B"), &mut used),
        );
        assert_eq!(a.len(), MAX_STEM);
        assert!(a != b && b.len() <= MAX_STEM + 4);
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

    /// DNABERT ids straight from the definition: whitespace dropped, `[UNK]` (1) for a
    /// k-mer with anything but A/C/G/T, else the index in ATCG order plus 5.
    fn reference_ids(seq: &[u8], k: usize) -> Vec<u16> {
        let bases: Vec<u8> = seq
            .iter()
            .copied()
            .filter(|b| !b" \t\r".contains(b))
            .collect();
        bases
            .windows(k)
            .map(|kmer| {
                kmer.iter()
                    .try_fold(0u16, |acc, &b| {
                        let code = b"ATCG".iter().position(|&x| x == b.to_ascii_uppercase())?;
                        Some(acc * 4 + code as u16)
                    })
                    .map_or(1, |index| index + 5)
            })
            .collect()
    }

    use crate::test_rng::{Mix, XorShift};

    /// Sequence text: A/C/G/T runs in either case, N runs, IUPAC codes, a space or
    /// tab now and then.
    fn sequence(rng: &mut XorShift, len: usize) -> Vec<u8> {
        let mix = Mix {
            one_in: 60,
            n_run: 200,
            acgt_run: 20_000,
            stray: b" \t",
        };
        rng.sequence(len, &mix)
    }

    /// FASTA text of `records` wrapped at `width` with line end `eol`; every so often a
    /// line is cut short, as files joined by hand have.
    fn fasta(
        records: &[(String, Vec<u8>)],
        width: usize,
        eol: &[u8],
        rng: &mut XorShift,
    ) -> Vec<u8> {
        let mut text = Vec::new();
        for (name, seq) in records {
            text.extend_from_slice(format!(">{name} test").as_bytes());
            text.extend_from_slice(eol);
            let mut at = 0;
            while at < seq.len() {
                let w = if rng.below(500) == 0 {
                    rng.below(width as u64) as usize + 1
                } else {
                    width
                };
                let end = (at + w).min(seq.len());
                text.extend_from_slice(&seq[at..end]);
                text.extend_from_slice(eol);
                at = end;
            }
        }
        text
    }

    fn write_temp(text: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        f.write_all(text).expect("write");
        f
    }

    #[test]
    fn lines_across_read_buffers_match_the_definition() {
        // Over a MiB, so lines and records straddle the parser's 1 MiB reads, with
        // the widths of real files, one-base lines, and lines too long to be joined.
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let tok = Tokenizer::dnabert(6, 1).expect("tok");
        for (width, eol) in [
            (60, &b"\n"[..]),
            (61, b"\r\n"),
            (80, b"\n"),
            (1, b"\n"),
            (7, b"\r\n"),
            (32, b"\n"),
            (33, b"\n"),
            (4095, b"\r\n"),
            (5000, b"\n"),
        ] {
            let total = if width <= 33 { 300_000 } else { 1_400_000 };
            let records: Vec<(String, Vec<u8>)> = (0..3)
                .map(|r| (format!("r{r}"), sequence(&mut rng, total / 3 + r * 7)))
                .collect();
            let text = fasta(&records, width, eol, &mut rng);
            let f = write_temp(&text);
            let (recs, summary) =
                tokenize_fasta::<u16>(f.path(), &tok, ReadOptions::default(), None).expect("parse");
            assert_eq!(summary.lines, text.split(|&b| b == b'\n').count() as u64);
            for (rec, (name, seq)) in recs.iter().zip(&records) {
                let want = reference_ids(seq, 6);
                assert_eq!(&rec.name, name);
                assert!(rec.ids == want, "width {width}: record {name} differs");
                assert_eq!(rec.n_unk, want.iter().filter(|&&id| id == 1).count() as u64);
            }
        }
    }

    #[test]
    fn errors_after_joined_lines_name_their_line_and_column() {
        let tok = Tokenizer::dnabert(6, 1).expect("tok");
        for eol in [&b"\n"[..], b"\r\n"] {
            // 30,000 lines of 60 bases (1.8 MB), then a bad byte in column 17.
            let mut text = b">chr1".to_vec();
            text.extend_from_slice(eol);
            for i in 0..30_000 {
                text.extend(std::iter::repeat_n(b"ACGT"[i % 4], 60));
                text.extend_from_slice(eol);
            }
            let mut bad = vec![b'g'; 60];
            bad[16] = b'!';
            text.extend_from_slice(&bad);
            text.extend_from_slice(eol);
            let f = write_temp(&text);
            let err = tokenize_fasta::<u16>(f.path(), &tok, ReadOptions::default(), None)
                .expect_err("bad byte");
            let msg = err.to_string();
            assert!(msg.contains(":30002: record 'chr1'"), "{msg}");
            assert!(msg.contains("'!' at column 17"), "{msg}");
        }
    }

    #[test]
    fn large_and_small_records_reserve_and_shrink() {
        // A record past the reserve threshold, a small one, then a large one again
        // (reserved only once it turns out to be large).
        let mut rng = XorShift(77);
        let tok = Tokenizer::dnabert(6, 1).expect("tok");
        let records: Vec<(String, Vec<u8>)> = [RESERVE_AFTER + 1000, 50, RESERVE_AFTER + 7]
            .iter()
            .enumerate()
            .map(|(r, &len)| (format!("r{r}"), sequence(&mut rng, len)))
            .collect();
        let f = write_temp(&fasta(&records, 70, b"\n", &mut rng));
        let (recs, _) =
            tokenize_fasta::<u16>(f.path(), &tok, ReadOptions::default(), None).expect("parse");
        for (rec, (_, seq)) in recs.iter().zip(&records) {
            assert!(rec.ids == reference_ids(seq, 6));
        }
    }

    #[test]
    fn huge_page_range_stays_within_the_allocation_pages() {
        const M: usize = HUGE_PAGE;
        // Whole huge pages inside, or none.
        assert_eq!(huge_page_range(5 * M + 8192, 9 * M - 8192), (6 * M, 8 * M));
        assert_eq!(huge_page_range(5 * M + 8192, 6 * M + 100), (6 * M, 6 * M));
        assert_eq!(huge_page_range(5 * M + 8192, 5 * M + 9000), (6 * M, 5 * M));
        // Widened to boundaries inside the first and last page.
        assert_eq!(huge_page_range(5 * M + 16, 9 * M - 48), (5 * M, 9 * M));
        assert_eq!(huge_page_range(5 * M, 9 * M), (5 * M, 9 * M));
        assert_eq!(huge_page_range(5 * M + PAGE, 9 * M - PAGE), (6 * M, 8 * M));
    }

    #[test]
    fn reservations_of_any_size_hold_their_ids() {
        // Tiny: no huge page fits; large: rounded to whole huge pages and advised.
        for total in [0, 1, 100, 1_000_000, 3_000_000] {
            let mut buf: Vec<u16> = vec![7, 8];
            reserve_tokens(&mut buf, total);
            assert!(buf.capacity() >= total);
            if total * 2 >= HUGE_PAGE {
                assert_eq!((buf.capacity() * 2 + ALLOC_HEADER) % HUGE_PAGE, 0);
            }
            assert_eq!(buf, [7, 8]);
            buf.extend((0..total).map(|i| i as u16));
            assert_eq!(&buf[..2], &[7, 8]);
            assert!(buf[2..].iter().enumerate().all(|(i, &x)| x == i as u16));
        }
        // An impossible reservation leaves the buffer as it was, growing as usual.
        let mut buf: Vec<u16> = vec![1, 2, 3];
        reserve_tokens(&mut buf, usize::MAX / 4);
        assert_eq!(buf, [1, 2, 3]);
        buf.push(4);
        assert_eq!(buf, [1, 2, 3, 4]);
    }

    #[test]
    fn streaming_buffer_never_outgrows_its_room() {
        // 3 Mbp of joinable lines, then a record of one 1.5 Mbp line (read in 1 MiB
        // pieces), both past a flush.
        let mut rng = XorShift(5);
        let tok = Tokenizer::dnabert(6, 1).expect("tok");
        let joined: Vec<u8> = (0..3_000_000)
            .map(|_| b"ACGT"[rng.below(4) as usize])
            .collect();
        let long: Vec<u8> = (0..1_500_000)
            .map(|_| b"acgt"[rng.below(4) as usize])
            .collect();
        let mut text = fasta(&[("a".into(), joined.clone())], 60, b"\n", &mut rng);
        text.extend_from_slice(b">b\n");
        text.extend_from_slice(&long);
        text.push(b'\n');
        let f = write_temp(&text);
        let dir = tempfile::tempdir().expect("dir");
        let mut sink = npy_sink::<u16>(&tok, dir.path());
        let room = sink.buf.capacity();
        fasta::read_fasta(f.path(), ReadOptions::default(), &mut sink, None).expect("read");
        assert_eq!(sink.buf.capacity(), room);
        for (file, seq) in sink.emitter.files.iter().zip([&joined, &long]) {
            let bytes = std::fs::read(&file.file).expect("npy");
            let ids: Vec<u16> = bytes[128..]
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect();
            assert!(ids == reference_ids(seq, 6), "{}", file.name);
        }
    }
}
