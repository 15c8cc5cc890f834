//! Reading a plain FASTA file on several threads: the file is cut into pieces that
//! begin at record headers, each piece is parsed into a sink of its own, and the pieces
//! are put back together in file order with the same line numbers, duplicate-name
//! checks and first error that one sequential read gives.
//!
//! Piece `j` owns every record whose header starts in the byte range
//! `[j * size / n, (j + 1) * size / n)`: a worker finds the first header at or after
//! its range's start (a `>` right after a `\n`) and parses from there until the first
//! header at or after the next range's start. A record longer than a range is read
//! whole by the piece where it begins, so a file of one record gains nothing, while a
//! genome of many chromosomes or contigs is read in parallel.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{
    duplicate, no_records, Parser, PieceState, Progress, ReadOptions, ReadSummary, SeqSink,
    BUF_SIZE, MAX_HEADER,
};
use crate::error::{Error, Result};
use crate::source::{to_hex, Compression, SourceInfo};

/// Plain files smaller than this are read on one thread (unless the environment
/// variable `DNAKMER_SPLIT_MIN_BYTES` says otherwise); a piece's byte range is at least
/// a quarter of it.
pub const MIN_SPLIT_BYTES: u64 = 4 << 20;
/// Pieces per thread, so that records of unequal length still spread evenly.
const PIECES_PER_THREAD: u64 = 4;
/// How often the calling thread reports progress while the workers run.
const REPORT_EVERY: Duration = Duration::from_millis(100);

/// What one piece of the file gave.
struct PieceResult<S> {
    sink: S,
    /// Record names with the (piece-local, 1-based) line of their header, in file order.
    names: Vec<(String, u64)>,
    /// Line breaks read by the piece.
    newlines: u64,
    /// The error that stopped the piece and the (piece-local) line it stopped on.
    error: Option<(u64, Error)>,
}

/// Shared by the workers of one split read.
struct Shared<'a> {
    path: &'a Path,
    file: &'a File,
    size: u64,
    pieces: u64,
    next: AtomicUsize,
    /// Lowest piece that failed: pieces after it are not needed.
    failed: AtomicUsize,
    cancel: AtomicBool,
    bytes_done: AtomicU64,
}

impl Shared<'_> {
    /// First byte of piece `j`'s range.
    fn range_start(&self, j: u64) -> u64 {
        u64::try_from(u128::from(j) * u128::from(self.size) / u128::from(self.pieces))
            .expect("below the file size")
    }
}

/// Whether `path` is read by [`read_fasta_split`]: a regular, uncompressed file of at
/// least [`MIN_SPLIT_BYTES`] read with more than one thread.
fn splittable(
    path: &Path,
    threads: usize,
    min_bytes: u64,
) -> Option<(File, u64, Option<std::time::SystemTime>)> {
    if threads < 2 {
        return None;
    }
    // Look before opening: opening a FIFO would wait for its writer, and closing it again
    // would end the stream that the sequential read is about to take.
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() < min_bytes.max(2) {
        return None;
    }
    let mut magic = [0u8; 2];
    let n = read_at(&file, &mut magic, 0).ok()?;
    (magic[..n] != [0x1f, 0x8b]).then_some((file, meta.len(), meta.modified().ok()))
}

/// Parse a plain FASTA file on `opts.threads` threads, each piece of it into a sink
/// made by `new_sink(first_byte)`; the sinks come back in file order. `None` when the
/// file is not one to split (compressed, small, not a regular file, or one thread):
/// read it with [`super::read_fasta`] instead. Errors are those of the sequential read
/// (the first in the file wins), and no sink sees a record twice.
pub fn read_fasta_split<S, F>(
    path: &Path,
    opts: ReadOptions,
    new_sink: F,
    progress: Option<Progress<'_>>,
) -> Result<Option<(Vec<S>, ReadSummary)>>
where
    S: SeqSink + Send,
    F: Fn(u64) -> S + Sync,
{
    let min_bytes = std::env::var("DNAKMER_SPLIT_MIN_BYTES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(MIN_SPLIT_BYTES);
    read_split_with(path, opts, new_sink, progress, min_bytes)
}

/// [`read_fasta_split`] for files of at least `min_bytes`.
fn read_split_with<S, F>(
    path: &Path,
    opts: ReadOptions,
    new_sink: F,
    progress: Option<Progress<'_>>,
    min_bytes: u64,
) -> Result<Option<(Vec<S>, ReadSummary)>>
where
    S: SeqSink + Send,
    F: Fn(u64) -> S + Sync,
{
    let Some((file, size, modified)) = splittable(path, opts.threads, min_bytes) else {
        return Ok(None);
    };
    let threads = opts.threads as u64;
    let pieces = (threads * PIECES_PER_THREAD)
        .min(size / (min_bytes / 4).max(1))
        .max(2);
    let shared = Shared {
        path,
        file: &file,
        size,
        pieces,
        next: AtomicUsize::new(0),
        failed: AtomicUsize::new(usize::MAX),
        cancel: AtomicBool::new(false),
        bytes_done: AtomicU64::new(0),
    };
    let slots: Vec<Mutex<Option<PieceResult<S>>>> = (0..pieces).map(|_| Mutex::new(None)).collect();
    let mut reporter = Reporter {
        callback: progress,
        last: 0,
        stopped: None,
    };
    let sha256 = std::thread::scope(|scope| {
        let (done_tx, done_rx) = channel::<()>();
        let hasher = opts
            .sha256
            .then(|| scope.spawn(|| hash_file(&file, &shared.cancel)));
        for _ in 1..opts
            .threads
            .min(usize::try_from(pieces).unwrap_or(usize::MAX))
        {
            let done = done_tx.clone();
            let (shared, slots, new_sink) = (&shared, &slots, &new_sink);
            scope.spawn(move || {
                work(shared, slots, new_sink, None);
                drop(done);
            });
        }
        drop(done_tx);
        // The calling thread takes pieces too (with its warm read buffer), reporting
        // progress (and so noticing Ctrl-C) as it goes and then while it waits.
        work(&shared, &slots, &new_sink, Some(&mut reporter));
        loop {
            let finished = matches!(
                done_rx.recv_timeout(REPORT_EVERY),
                Err(RecvTimeoutError::Disconnected)
            );
            reporter.report(&shared, true);
            if finished {
                break;
            }
        }
        if shared.failed.load(Ordering::Relaxed) != usize::MAX {
            // The read failed: the hash is not needed, so do not wait for the whole file.
            shared.cancel.store(true, Ordering::Relaxed);
        }
        hasher.map(|h| h.join().expect("hashing thread"))
    });
    if let Some(e) = reporter.stopped {
        return Err(e);
    }
    // A file cut short under the pieces reads as fewer records, not as an error.
    let now = file.metadata().map_err(|e| Error::io(path, e))?;
    crate::source::check_unchanged(path, size, modified, &now, None)?;
    let results: Vec<PieceResult<S>> = slots
        .into_iter()
        .map_while(|slot| slot.into_inner().expect("piece lock"))
        .collect();
    // The pieces that hold records (a piece inside a long record finds none).
    let pieces = results.iter().filter(|p| !p.names.is_empty()).count();
    let (sinks, records, lines) = join(path, results)?;
    let sha256 = match sha256 {
        Some(r) => Some(r.map_err(|e| Error::io(path, e))?),
        None => None,
    };
    Ok(Some((
        sinks,
        ReadSummary {
            compression: Compression::Plain,
            source: SourceInfo {
                bytes_read: size,
                file_size: size,
                sha256,
                bgzf_eof_missing: false,
            },
            records,
            lines,
            pieces,
        },
    )))
}

/// Calls the progress callback of a split read from the calling thread.
struct Reporter<'p> {
    callback: Option<Progress<'p>>,
    /// Bytes done at the last report.
    last: u64,
    /// The callback's error, which stops the read.
    stopped: Option<Error>,
}

impl Reporter<'_> {
    /// Report the bytes done so far when `now` or when enough were read since the last
    /// report; `false` once the callback has stopped the read.
    fn report(&mut self, shared: &Shared<'_>, now: bool) -> bool {
        if self.stopped.is_some() {
            return false;
        }
        let done = shared.bytes_done.load(Ordering::Relaxed);
        if let Some(cb) = self.callback.as_mut() {
            if now || done - self.last >= super::PROGRESS_EVERY {
                self.last = done;
                if let Err(e) = cb(done, shared.size) {
                    shared.cancel.store(true, Ordering::Relaxed);
                    self.stopped = Some(e);
                    return false;
                }
            }
        }
        true
    }
}

/// One worker: takes pieces in file order until none is left or one failed. The
/// calling thread passes its progress reporter.
fn work<S: SeqSink, F: Fn(u64) -> S>(
    shared: &Shared<'_>,
    slots: &[Mutex<Option<PieceResult<S>>>],
    new_sink: &F,
    mut reporter: Option<&mut Reporter<'_>>,
) {
    let mut buf = super::take_buffer();
    loop {
        let j = shared.next.fetch_add(1, Ordering::Relaxed);
        if j as u64 >= shared.pieces
            || j > shared.failed.load(Ordering::Relaxed)
            || shared.cancel.load(Ordering::Relaxed)
        {
            break;
        }
        let result = read_piece(
            shared,
            j as u64,
            &mut buf,
            new_sink,
            reporter.as_deref_mut(),
        );
        if result.error.is_some() {
            shared.failed.fetch_min(j, Ordering::Relaxed);
        }
        *slots[j].lock().expect("piece lock") = Some(result);
    }
    super::keep_buffer(buf);
}

/// Parse piece `j`: from the first header in its range to the first header in the
/// next one (or the end of the file).
fn read_piece<S: SeqSink, F: Fn(u64) -> S>(
    shared: &Shared<'_>,
    j: u64,
    buf: &mut Vec<u8>,
    new_sink: &F,
    reporter: Option<&mut Reporter<'_>>,
) -> PieceResult<S> {
    let end = if j + 1 < shared.pieces {
        shared.range_start(j + 1)
    } else {
        u64::MAX
    };
    let start = if j == 0 {
        Ok(Some(0))
    } else {
        first_header(
            shared.file,
            shared.range_start(j),
            end.min(shared.size),
            buf,
        )
    };
    // A piece whose range holds no header (it lies inside a record) reads nothing.
    let empty = |error| PieceResult {
        sink: new_sink(shared.size),
        names: Vec::new(),
        newlines: 0,
        error,
    };
    let start = match start {
        Ok(Some(start)) => start,
        Ok(None) => return empty(None),
        Err(e) => return empty(Some((1, Error::io(shared.path, e)))),
    };
    let mut sink = new_sink(start);
    let mut parser = Parser::new(shared.path, &mut sink);
    parser.piece = Some(PieceState {
        stop_at: end,
        ..PieceState::default()
    });
    // Only the first piece can begin with a byte-order mark or blank lines.
    parser.at_file_start = j == 0;
    let error = parse_range(shared, &mut parser, start, buf, reporter)
        .and_then(|()| parser.end_record())
        .err()
        .map(|e| (parser.line, e));
    let names = parser.piece.take().map(|p| p.names).unwrap_or_default();
    let newlines = parser.line - 1;
    sink.release();
    PieceResult {
        sink,
        names,
        newlines,
        error,
    }
}

/// Feed the file from `start` to `parser` until it stops at its limit or the file ends.
fn parse_range<S: SeqSink>(
    shared: &Shared<'_>,
    parser: &mut Parser<'_, S>,
    start: u64,
    buf: &mut Vec<u8>,
    mut reporter: Option<&mut Reporter<'_>>,
) -> Result<()> {
    let mut offset = start;
    let mut filled = 0usize;
    loop {
        let go_on = reporter.as_mut().is_none_or(|r| r.report(shared, false));
        if !go_on || shared.cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let n = read_at(shared.file, &mut buf[filled..], offset + filled as u64)
            .map_err(|e| Error::io(shared.path, e))?;
        let eof = n == 0;
        filled += n;
        let piece = parser.piece.as_mut().expect("a piece");
        piece.base = offset;
        let consumed = parser.feed(&buf[..filled], eof)?;
        shared
            .bytes_done
            .fetch_add(consumed as u64, Ordering::Relaxed);
        if parser.piece.as_ref().is_some_and(|p| p.stopped) || eof {
            return Ok(());
        }
        buf.copy_within(consumed..filled, 0);
        offset += consumed as u64;
        filled -= consumed;
        if filled == buf.len() {
            if buf.len() >= MAX_HEADER {
                return Err(parser.error("header line is longer than 1 MiB"));
            }
            buf.resize(buf.len() * 2, 0);
        }
    }
}

/// Read at a file offset without moving a shared position (`pread`), retried when
/// interrupted.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    #[cfg(unix)]
    use std::os::unix::fs::FileExt;
    #[cfg(windows)]
    use std::os::windows::fs::FileExt;
    loop {
        #[cfg(unix)]
        let r = file.read_at(buf, offset);
        #[cfg(windows)]
        let r = file.seek_read(buf, offset);
        match r {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Offset of the first `>` in `[from, to)` that starts a line (`from > 0`), if any.
fn first_header(file: &File, from: u64, to: u64, buf: &mut [u8]) -> io::Result<Option<u64>> {
    // Scanning starts one byte early to see the line break before `from`; consecutive
    // reads overlap by one byte so that no `\n>` is cut in two.
    let mut at = from - 1;
    while at + 1 < to {
        let want = usize::try_from(to - at)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = read_at(file, &mut buf[..want], at)?;
        if n < 2 {
            return Ok(None);
        }
        if let Some(i) = memchr::memmem::find(&buf[..n], b"\n>") {
            let header = at + i as u64 + 1;
            return Ok((header < to).then_some(header));
        }
        at += n as u64 - 1;
    }
    Ok(None)
}

/// SHA-256 of the whole file, read on its own thread beside the parsing.
fn hash_file(file: &File, cancel: &AtomicBool) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUF_SIZE];
    let mut offset = 0u64;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let n = read_at(file, &mut buf, offset)?;
        if n == 0 {
            return Ok(to_hex(&hasher.finalize()));
        }
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
}

/// Put the pieces back in file order: line numbers made global, record names checked
/// for duplicates across pieces, and the first error of the file returned. Gives the
/// sinks, the record count and the line count of a sequential read.
fn join<S>(path: &Path, results: Vec<PieceResult<S>>) -> Result<(Vec<S>, usize, u64)> {
    let mut seen = std::collections::HashMap::<String, u64>::new();
    let mut before = 0u64;
    let mut sinks = Vec::with_capacity(results.len());
    for piece in results {
        let (error_line, error) = match piece.error {
            Some((line, e)) => (line + before, Some(shift_line(e, before))),
            None => (u64::MAX, None),
        };
        for (name, line) in piece.names {
            let line = line + before;
            if line >= error_line {
                break;
            }
            if let Some(&first) = seen.get(&name) {
                return Err(duplicate(path, line, &name, first));
            }
            seen.insert(name, line);
        }
        if let Some(e) = error {
            return Err(e);
        }
        before += piece.newlines;
        sinks.push(piece.sink);
    }
    if seen.is_empty() {
        return Err(no_records(path, before + 1));
    }
    Ok((sinks, seen.len(), before + 1))
}

/// `e` with its line number moved down by `lines` (for errors of a later piece).
fn shift_line(e: Error, lines: u64) -> Error {
    match e {
        Error::Format {
            path,
            line,
            record,
            msg,
        } => Error::Format {
            path,
            line: line + lines,
            record,
            msg,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fasta::tests::Collect;
    use crate::test_rng::{Mix, XorShift};
    use std::io::Write;

    /// A random FASTA-like text: records with some repeated names, descriptions, CRLF
    /// and blank lines, short lines of bases with N and IUPAC codes, and now and then
    /// something wrong (a bad byte, an empty or control-character header, data before
    /// the first header, a missing last line break).
    fn document(rng: &mut XorShift) -> Vec<u8> {
        let mix = Mix {
            one_in: 12,
            n_run: 5,
            acgt_run: 9,
            stray: if rng.below(6) == 0 { b"!" } else { b"\t" },
        };
        let mut text = Vec::new();
        match rng.below(12) {
            0 => text.extend_from_slice(b"\xef\xbb\xbf"),
            1 => text.extend_from_slice(b"\n \r\n"),
            2 => text.extend_from_slice(b"ACGT\n"),
            _ => {}
        }
        let eol: &[u8] = if rng.below(4) == 0 { b"\r\n" } else { b"\n" };
        for r in 0..rng.below(30) {
            let name = if rng.below(60) == 0 {
                rng.below(r + 1)
            } else {
                r
            };
            match rng.below(150) {
                0 => text.extend_from_slice(b">"),
                1 => write!(text, ">r{name} a\x01b").expect("write"),
                _ => write!(text, ">r{name} description {r}").expect("write"),
            }
            text.extend_from_slice(eol);
            let width = rng.below(12) as usize + 1;
            for _ in 0..rng.below(8) {
                text.extend(rng.sequence(width, &mix));
                text.extend_from_slice(eol);
                if rng.below(15) == 0 {
                    text.extend_from_slice(eol);
                }
            }
        }
        if rng.below(3) == 0 {
            text.extend(rng.sequence(5, &mix));
        }
        text
    }

    type Outcome = std::result::Result<(Vec<(String, String, Vec<u8>)>, usize, u64), String>;

    fn sequential(path: &Path) -> Outcome {
        let mut sink = Collect::default();
        read_super(path, &mut sink)
            .map(|s| (sink.records, s.records, s.lines))
            .map_err(|e| e.to_string())
    }

    fn read_super(path: &Path, sink: &mut Collect) -> Result<ReadSummary> {
        crate::fasta::read_fasta(path, ReadOptions::default(), sink, None)
    }

    fn split(path: &Path, threads: usize) -> Outcome {
        let opts = ReadOptions {
            threads,
            sha256: false,
        };
        match read_split_with(path, opts, |_| Collect::default(), None, 2) {
            Ok(Some((sinks, s))) => {
                let records = sinks.into_iter().flat_map(|c| c.records).collect();
                Ok((records, s.records, s.lines))
            }
            // Files under two bytes are not split.
            Ok(None) if std::fs::metadata(path).expect("size").len() < 2 => sequential(path),
            Ok(None) => panic!("not split"),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn a_split_read_gives_what_a_sequential_read_gives() {
        let mut rng = XorShift(0x5eed_5917);
        let (mut errors, mut records) = (0, 0);
        for _ in 0..400 {
            let text = document(&mut rng);
            let mut f = tempfile::NamedTempFile::new().expect("tmp");
            f.write_all(&text).expect("write");
            let want = sequential(f.path());
            match &want {
                Ok((r, _, _)) => records += r.len(),
                Err(_) => errors += 1,
            }
            for threads in [2, 3, 5] {
                let got = split(f.path(), threads);
                assert_eq!(
                    got,
                    want,
                    "{threads} threads: {}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
        // The documents exercise both outcomes.
        assert!(
            errors > 40 && records > 2000,
            "{errors} errors, {records} records"
        );
    }

    #[test]
    fn pieces_start_at_headers_only() {
        let text = b">a\nAC>GT\n>b\n\n>c x\r\n>d\nAC";
        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        f.write_all(text).expect("write");
        let file = File::open(f.path()).expect("open");
        let mut buf = vec![0u8; 3];
        let headers: Vec<Option<u64>> = (1..text.len() as u64)
            .map(|from| first_header(&file, from, text.len() as u64, &mut buf).expect("read"))
            .collect();
        for (from, got) in (1..).zip(headers) {
            let want = (from..text.len() as u64)
                .find(|&i| text[i as usize] == b'>' && text[i as usize - 1] == b'\n');
            assert_eq!(got, want, "from {from}");
        }
        // A header at or after the end of the range belongs to the next piece.
        assert_eq!(first_header(&file, 1, 9, &mut buf).expect("read"), None);
        assert_eq!(first_header(&file, 1, 10, &mut buf).expect("read"), Some(9));
    }

    #[test]
    fn small_compressed_or_one_thread_inputs_are_not_split() {
        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        f.write_all(b">a\nACGT\n>b\nACGT\n").expect("write");
        let opts = |threads| ReadOptions {
            threads,
            sha256: false,
        };
        let run = |threads, min| {
            read_split_with(f.path(), opts(threads), |_| Collect::default(), None, min)
                .expect("read")
                .is_some()
        };
        assert!(run(2, 2));
        assert!(!run(1, 2));
        assert!(!run(2, 1 << 20));
        let mut gz = tempfile::NamedTempFile::new().expect("tmp");
        gz.write_all(b"\x1f\x8b\x08\x00rest").expect("write");
        let r = read_split_with(gz.path(), opts(2), |_| Collect::default(), None, 2);
        assert!(r.expect("read").is_none());
    }

    #[test]
    fn the_hash_and_progress_of_a_split_read() {
        let mut rng = XorShift(77);
        let mut text = Vec::new();
        for r in 0..50 {
            writeln!(text, ">r{r}").expect("write");
            text.extend(rng.sequence(
                2000,
                &Mix {
                    one_in: 50,
                    n_run: 3,
                    acgt_run: 60,
                    stray: b"\n",
                },
            ));
            text.push(b'\n');
        }
        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        f.write_all(&text).expect("write");
        let opts = ReadOptions {
            threads: 3,
            sha256: true,
        };
        let mut last = (0, 0);
        let mut cb = |done, total| {
            last = (done, total);
            Ok(())
        };
        let (sinks, summary) =
            read_split_with(f.path(), opts, |_| Collect::default(), Some(&mut cb), 2)
                .expect("read")
                .expect("split");
        assert!(sinks.len() > 2);
        assert_eq!(summary.records, 50);
        assert_eq!(summary.source.sha256, Some(to_hex(&Sha256::digest(&text))));
        assert_eq!(last, (text.len() as u64, text.len() as u64));
        // A callback error stops the read and is what it returns.
        let mut stop = |_, _| Err(Error::Cancelled);
        let r = read_split_with(f.path(), opts, |_| Collect::default(), Some(&mut stop), 2);
        assert!(matches!(r, Err(Error::Cancelled)));
    }
}
