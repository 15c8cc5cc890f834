//! Opening an input file as a stream of decompressed bytes: plain, gzip (all members of
//! a multi-member file), or BGZF (blocks decompressed in parallel).
//!
//! - gzip is inflated by zlib-rs (through flate2) as a stream, so a multi-GB member needs
//!   no more memory than a small one. With `threads > 1`, one thread inflates while the
//!   caller parses (a gzip member can only be inflated from its start).
//! - BGZF blocks are inflated by libdeflate. On one thread they go straight into the
//!   caller's buffer; with `threads > 1`, `threads - 1` workers each inflate runs of
//!   blocks with their own decompressor and buffers, and the caller reads them in order,
//!   inflating the next run itself whenever the one it needs is not ready.
//! - Threaded streams recycle a fixed number of buffers (`pieces_in_flight`, plus
//!   `CALLER_AHEAD` of the caller's own for BGZF), which bounds their memory. Data is handed over in stream order, and an error
//!   (truncation, bad CRC, ...) comes after all the data before it.
//!
//! Threads never outlive the call that started them (`std::thread::scope`), so nothing
//! is left running across a `fork()`: DataLoader workers can use the core safely.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::Scope;
use std::time::SystemTime;

use flate2::bufread::MultiGzDecoder;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const READ_CHUNK: usize = 1 << 20;

/// How the input file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed text.
    Plain,
    /// gzip, possibly several concatenated members.
    Gzip,
    /// Blocked gzip (htslib's BGZF).
    Bgzf,
}

impl Compression {
    /// Lowercase name used in manifests.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Compression::Plain => "plain",
            Compression::Gzip => "gzip",
            Compression::Bgzf => "bgzf",
        }
    }
}

/// Facts about the raw input gathered while it was read.
#[derive(Debug, Clone, Default)]
pub struct SourceInfo {
    /// Bytes of the (possibly compressed) file that were read.
    pub bytes_read: u64,
    /// Size of the file on disk.
    pub file_size: u64,
    /// Hex SHA-256 of the raw file, when it was asked for.
    pub sha256: Option<String>,
    /// A BGZF file that lacks the empty end-of-file block (possibly truncated).
    pub bgzf_eof_missing: bool,
}

/// Shared state between the raw reader (possibly on another thread) and the caller.
#[derive(Default)]
pub struct SourceState {
    /// Raw bytes read so far, for progress reporting.
    pub bytes_read: AtomicU64,
    hasher: Mutex<Option<Sha256>>,
    eof_block_seen: Mutex<Option<bool>>,
}

impl SourceState {
    fn finish(&self, file_size: u64) -> SourceInfo {
        let sha256 = self
            .hasher
            .lock()
            .expect("hasher lock")
            .take()
            .map(|h| to_hex(&h.finalize()));
        let eof = *self.eof_block_seen.lock().expect("eof lock");
        SourceInfo {
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            file_size,
            sha256,
            bgzf_eof_missing: eof == Some(false),
        }
    }
}

/// Lowercase hex encoding.
#[must_use]
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Hex SHA-256 of a whole file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(to_hex(&h.finalize()))
}

/// Counts (and optionally hashes) the raw bytes that pass through.
struct RawReader {
    file: File,
    state: Arc<SourceState>,
}

impl Read for RawReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.state.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(h) = self.state.hasher.lock().expect("hasher lock").as_mut() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Detect the compression of a stream from its first bytes.
fn detect(head: &[u8]) -> Compression {
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        if is_bgzf_header(head) {
            Compression::Bgzf
        } else {
            Compression::Gzip
        }
    } else {
        Compression::Plain
    }
}

/// A BGZF block header (SAM/BAM specification 4.1): gzip with FLG = 4 exactly (an extra
/// field and nothing else; other flags would move the data that `BSIZE` locates) and a
/// single `BC` subfield.
fn is_bgzf_header(h: &[u8]) -> bool {
    h.len() >= 18
        && h[0] == 0x1f
        && h[1] == 0x8b
        && h[2] == 8
        && h[3] == 4
        && u16::from_le_bytes([h[10], h[11]]) == 6
        && h[12] == b'B'
        && h[13] == b'C'
        && u16::from_le_bytes([h[14], h[15]]) == 2
}

/// An open input: a decompressed byte stream plus what is known about the raw file.
pub struct Source<'scope> {
    /// Decompressed bytes.
    pub reader: Box<dyn Read + Send + 'scope>,
    /// Detected compression.
    pub compression: Compression,
    /// Shared progress / hash state.
    pub state: Arc<SourceState>,
    file_size: u64,
    /// For a regular file: a handle on it and its modification time when opened, to
    /// tell at the end whether it changed while it was read.
    watch: Option<(File, Option<SystemTime>)>,
}

impl Source<'_> {
    /// Facts gathered so far (call after the stream is exhausted).
    #[must_use]
    pub fn info(&self) -> SourceInfo {
        self.state.finish(self.file_size)
    }

    /// [`Source::info`] once the stream is exhausted, or an error naming `path` when the
    /// file was truncated, extended or rewritten while it was read (what was read is
    /// then not the file the summary would describe).
    pub fn finish(&self, path: &Path) -> Result<SourceInfo> {
        let info = self.info();
        if let Some((file, modified)) = &self.watch {
            let meta = file.metadata().map_err(|e| Error::io(path, e))?;
            check_unchanged(
                path,
                self.file_size,
                *modified,
                &meta,
                Some(info.bytes_read),
            )?;
        }
        Ok(info)
    }

    /// Size of the raw file in bytes.
    #[must_use]
    pub fn file_size(&self) -> u64 {
        self.file_size
    }
}

/// An error when a regular file's size or modification time now differ from those it
/// had when it was opened (`size`, `modified`), or when the bytes read (`read`, if
/// known) are not its size: it changed while it was read.
pub fn check_unchanged(
    path: &Path,
    size: u64,
    modified: Option<SystemTime>,
    now: &std::fs::Metadata,
    read: Option<u64>,
) -> Result<()> {
    let what = if now.len() != size {
        format!("its size went from {size} to {} bytes", now.len())
    } else if now.modified().ok() != modified {
        "it was rewritten".to_owned()
    } else if let Some(n) = read.filter(|&n| n != size) {
        format!("{n} of its {size} bytes were read")
    } else {
        return Ok(());
    };
    Err(Error::io(
        path,
        io::Error::other(format!(
            "the file changed while it was read ({what}); read it again once it is complete"
        )),
    ))
}

/// Open `path`, detect its compression and return a decompressed stream. With
/// `threads > 1`, decompression runs on worker threads inside `scope`, overlapping
/// with whatever the caller does with the bytes.
pub fn open<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    path: &Path,
    threads: usize,
    hash: bool,
) -> Result<Source<'scope>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        // EISDIR, so Python raises the IsADirectoryError that open() on a directory gives.
        #[cfg(unix)]
        let e = io::Error::from_raw_os_error(21);
        #[cfg(not(unix))]
        let e = io::Error::new(io::ErrorKind::IsADirectory, "is a directory");
        return Err(Error::io(path, e));
    }
    let watch = if meta.is_file() {
        Some((
            file.try_clone().map_err(|e| Error::io(path, e))?,
            meta.modified().ok(),
        ))
    } else {
        None
    };
    let state = Arc::new(SourceState::default());
    if hash {
        *state.hasher.lock().expect("hasher lock") = Some(Sha256::new());
    }
    let raw = RawReader {
        file,
        state: Arc::clone(&state),
    };
    let mut buffered = BufReader::with_capacity(READ_CHUNK, raw);
    let head = buffered.fill_buf().map_err(|e| Error::io(path, e))?;
    let compression = detect(head);
    let reader: Box<dyn Read + Send + 'scope> = match compression {
        Compression::Plain => Box::new(buffered),
        Compression::Gzip => {
            let dec = MultiGzDecoder::new(buffered);
            if threads > 1 {
                Box::new(Sticky::new(spawn_gzip(scope, dec)))
            } else {
                Box::new(Sticky::new(dec))
            }
        }
        Compression::Bgzf => {
            let input = BgzfInput::new(buffered, Arc::clone(&state));
            if threads > 1 {
                Box::new(Sticky::new(spawn_bgzf(scope, input, threads)))
            } else {
                Box::new(Sticky::new(BgzfReader::new(input)))
            }
        }
    };
    Ok(Source {
        reader,
        compression,
        state,
        file_size: meta.len(),
        watch,
    })
}

/// Repeats the first error of a decompressed stream to every later read, so a caller
/// that reads on never takes what follows a bad spot for data or for the end.
struct Sticky<R> {
    inner: R,
    failed: Option<(io::ErrorKind, String)>,
}

impl<R> Sticky<R> {
    fn new(inner: R) -> Self {
        Sticky {
            inner,
            failed: None,
        }
    }
}

impl<R: Read> Read for Sticky<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, msg)) = &self.failed {
            return Err(io::Error::new(*kind, msg.clone()));
        }
        let result = self.inner.read(buf);
        if let Err(e) = &result {
            if e.kind() != io::ErrorKind::Interrupted {
                self.failed = Some((e.kind(), e.to_string()));
            }
        }
        result
    }
}

/// Translate an I/O error from a decompressed stream into the crate's error type.
#[must_use]
pub fn stream_error(path: &Path, compression: Compression, e: io::Error) -> Error {
    match compression {
        Compression::Plain => Error::io(path, e),
        Compression::Gzip | Compression::Bgzf => {
            let what = compression.name();
            let msg = if e.kind() == io::ErrorKind::UnexpectedEof {
                format!("{what} stream is truncated (unexpected end of file)")
            } else if compression == Compression::Gzip && e.to_string() == "invalid gzip header" {
                // The first member's header was checked when the format was detected, so
                // this is almost always junk appended after the last member.
                format!("corrupt gzip stream: {e} (trailing bytes after the last gzip member?)")
            } else {
                format!("corrupt {what} stream: {e}")
            };
            Error::Compression {
                path: path.to_path_buf(),
                msg,
            }
        }
    }
}

/// Bytes per piece handed from a decompression thread to the reader.
const PIECE: usize = 1 << 20;
/// Most uncompressed bytes one BGZF block may hold.
const BGZF_MAX_BLOCK: usize = 1 << 16;
/// BGZF blocks inflated together as one piece: 4 full blocks are 256 KiB. Small
/// pieces keep every thread busy from the start of a small file and balance the
/// caller's share against the workers'; on two cores 4 blocks beat 16 (1.72x against
/// 1.45x over one thread for a 4.6 Mbp genome) and 2 (more hand-overs).
const BLOCKS_PER_PIECE: usize = 4;

/// Pieces that circulate between the decompression threads and the reader. Every piece
/// holds at most 1 MiB of decompressed data (gzip) or `BLOCKS_PER_PIECE` blocks (BGZF),
/// so a threaded stream holds at most `pieces_in_flight(workers)` pieces of output from
/// its workers (plus `CALLER_AHEAD` the reader inflated itself), and about one
/// compressed piece per thread.
fn pieces_in_flight(workers: usize) -> usize {
    2 * workers + 2
}

/// A stretch of the decompressed stream, numbered in stream order. `error`, when set,
/// comes right after `data` in the stream and ends it.
struct Piece {
    seq: u64,
    data: Vec<u8>,
    error: Option<io::Error>,
    /// Inflated by the reading thread itself, in a buffer of its own.
    by_caller: bool,
}

/// Spent buffers, handed back by the reader for the decompression threads to reuse.
type Pool = Mutex<Receiver<Vec<u8>>>;

/// The next empty buffer, or `None` once the reader is gone.
fn take_buffer(pool: &Pool) -> Option<Vec<u8>> {
    pool.lock().expect("pool lock").recv().ok()
}

/// Work the reading thread can take on while the piece it needs next is not ready.
trait Claim: Send {
    /// Take the next piece nobody has taken yet and decompress it into `out`; `None`
    /// when the stream has none left.
    fn claim(&mut self, out: Vec<u8>) -> Option<Piece>;
}

/// Pieces the reading thread decompresses ahead of the one it waits for, at most.
const CALLER_AHEAD: usize = 2;

/// The reading end of a threaded stream: puts the pieces back in order and serves them
/// through `Read`. Dropping it stops the threads: their sends fail and the buffer pool
/// closes.
struct PipeReader<'a> {
    results: Receiver<Piece>,
    recycle: Sender<Vec<u8>>,
    /// Pieces that arrived before their turn.
    early: BTreeMap<u64, Piece>,
    next: u64,
    current: Vec<u8>,
    current_by_caller: bool,
    /// `current` is a buffer of the pool (decompressed by a thread), owed back to it.
    current_pooled: bool,
    pos: usize,
    /// The error that ends `current`.
    error: Option<io::Error>,
    done: bool,
    /// Lets the reading thread decompress pieces itself instead of waiting.
    helper: Option<Box<dyn Claim + 'a>>,
    /// The reading thread's own spent buffers.
    spare: Vec<Vec<u8>>,
}

impl<'a> PipeReader<'a> {
    /// The reader, the buffer pool (already holding `pieces` empty buffers) and the
    /// sender for the decompression threads.
    fn new(pieces: usize, helper: Option<Box<dyn Claim + 'a>>) -> (Self, Arc<Pool>, Sender<Piece>) {
        let (tx, results) = channel();
        let (recycle, pool) = channel();
        for _ in 0..pieces {
            recycle.send(Vec::new()).expect("pool is open");
        }
        let reader = PipeReader {
            results,
            recycle,
            early: BTreeMap::new(),
            next: 0,
            current: Vec::new(),
            current_by_caller: false,
            current_pooled: false,
            pos: 0,
            error: None,
            done: false,
            helper,
            spare: Vec::new(),
        };
        (reader, Arc::new(Mutex::new(pool)), tx)
    }

    fn keep(&mut self, p: Piece) {
        self.early.insert(p.seq, p);
    }

    /// Decompress the next unclaimed piece on this thread, if it may and one is left.
    fn help(&mut self) -> bool {
        if self.early.values().filter(|p| p.by_caller).count() >= CALLER_AHEAD {
            return false;
        }
        let Some(helper) = self.helper.as_mut() else {
            return false;
        };
        let out = self.spare.pop().unwrap_or_default();
        match helper.claim(out) {
            Some(p) => {
                self.keep(p);
                true
            }
            None => false,
        }
    }

    fn next_piece(&mut self) -> io::Result<Option<Piece>> {
        loop {
            if let Some(p) = self.early.remove(&self.next) {
                return Ok(Some(p));
            }
            // Whatever the threads finished meanwhile, then this thread's own share:
            // when the piece it needs is still being decompressed elsewhere, it takes
            // the next one rather than wait (on two cores the caller and one worker
            // then share the decompression).
            match self.results.try_recv() {
                Ok(p) => {
                    self.keep(p);
                    continue;
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => {}
            }
            if self.help() {
                continue;
            }
            match self.results.recv() {
                Ok(p) => self.keep(p),
                Err(_) if self.early.is_empty() => return Ok(None),
                // Only if a thread died between taking a piece number and sending it.
                Err(_) => return Err(io::Error::other("a decompression thread stopped early")),
            }
        }
    }
}

impl Read for PipeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.current.len() {
                let n = buf.len().min(self.current.len() - self.pos);
                buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if let Some(e) = self.error.take() {
                self.done = true;
                return Err(e);
            }
            if self.done {
                return Ok(0);
            }
            let spent = std::mem::take(&mut self.current);
            self.pos = 0;
            if self.current_by_caller {
                self.spare.push(spent);
            } else if std::mem::take(&mut self.current_pooled) {
                // Every pooled buffer goes back, an empty one too (a piece of empty BGZF
                // blocks): the threads take one per piece, and a pool run dry while the
                // reader waits for the next piece would stop both. Fails only when every
                // thread has finished; the buffer is then freed.
                let _ = self.recycle.send(spent);
            }
            match self.next_piece() {
                Ok(Some(p)) => {
                    self.next += 1;
                    self.current = p.data;
                    self.current_by_caller = p.by_caller;
                    self.current_pooled = !p.by_caller;
                    self.error = p.error;
                }
                Ok(None) => self.done = true,
                Err(e) => self.error = Some(e),
            }
        }
    }
}

/// gzip on two threads: one thread inflates into pooled 1 MiB buffers while the caller
/// parses the previous ones. (A gzip member can only be inflated from its start, so one
/// thread is all it can use.)
fn spawn_gzip<'scope, R: Read + Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    mut decoder: R,
) -> PipeReader<'scope> {
    let (reader, pool, results) = PipeReader::new(pieces_in_flight(1), None);
    scope.spawn(move || {
        let mut seq = 0;
        while let Some(mut buf) = take_buffer(&pool) {
            // The decoder overwrites the buffer; only a grown tail is zeroed.
            buf.resize(PIECE, 0);
            let mut filled = 0;
            let mut error = None;
            while filled < buf.len() {
                match decoder.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            buf.truncate(filled);
            let last = error.is_some() || filled < PIECE;
            if filled == 0 && error.is_none() {
                return;
            }
            let piece = Piece {
                seq,
                data: buf,
                error,
                by_caller: false,
            };
            if results.send(piece).is_err() || last {
                return;
            }
            seq += 1;
        }
    });
    reader
}

/// Where one BGZF block's deflate data lies in a buffer of compressed blocks, and what
/// its trailer says.
struct BlockMeta {
    start: usize,
    end: usize,
    crc: u32,
    isize: usize,
}

/// The compressed side of a BGZF file: splits it into blocks. Shared by the worker
/// threads under a lock (reading is cheap next to inflating).
struct BgzfInput<R> {
    inner: R,
    state: Arc<SourceState>,
    last_block_empty: bool,
    finished: bool,
    next_seq: u64,
}

impl<R: BufRead> BgzfInput<R> {
    fn new(inner: R, state: Arc<SourceState>) -> Self {
        BgzfInput {
            inner,
            state,
            last_block_empty: false,
            finished: false,
            next_seq: 0,
        }
    }

    /// Append the next block's deflate data to `raw`; `None` at the end of the file.
    fn read_block(&mut self, raw: &mut Vec<u8>) -> io::Result<Option<BlockMeta>> {
        if self.finished {
            return Ok(None);
        }
        match self.read_block_inner(raw) {
            Ok(Some(b)) => {
                self.last_block_empty = b.isize == 0;
                Ok(Some(b))
            }
            Ok(None) => {
                self.finished = true;
                *self.state.eof_block_seen.lock().expect("eof lock") = Some(self.last_block_empty);
                Ok(None)
            }
            Err(e) => {
                self.finished = true;
                Err(e)
            }
        }
    }

    fn read_block_inner(&mut self, raw: &mut Vec<u8>) -> io::Result<Option<BlockMeta>> {
        let mut header = [0u8; 18];
        let mut got = 0;
        while got < header.len() {
            let n = self.inner.read(&mut header[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        if got == 0 {
            return Ok(None);
        }
        if got < header.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated BGZF block header",
            ));
        }
        if !is_bgzf_header(&header) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a BGZF block (the file mixes BGZF with other gzip members)",
            ));
        }
        let bsize = usize::from(u16::from_le_bytes([header[16], header[17]])) + 1;
        if bsize < 26 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "BGZF block size too small",
            ));
        }
        let start = raw.len();
        raw.resize(start + bsize - 18, 0);
        if let Err(e) = self.inner.read_exact(&mut raw[start..]) {
            raw.truncate(start);
            return Err(e);
        }
        let tail = raw.len() - 8;
        let crc = u32::from_le_bytes(raw[tail..tail + 4].try_into().expect("4 bytes"));
        let isize = u32::from_le_bytes(raw[tail + 4..].try_into().expect("4 bytes")) as usize;
        raw.truncate(tail);
        if isize > BGZF_MAX_BLOCK {
            raw.truncate(start);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "BGZF block claims more than 64 KiB of data",
            ));
        }
        Ok(Some(BlockMeta {
            start,
            end: tail,
            crc,
            isize,
        }))
    }

    /// Read up to `BLOCKS_PER_PIECE` blocks into `raw` and `blocks` and number them as
    /// the next piece; `None` when nothing is left. A read error ends the piece (after
    /// the blocks before it) and the stream.
    fn read_piece(
        &mut self,
        raw: &mut Vec<u8>,
        blocks: &mut Vec<BlockMeta>,
    ) -> Option<(u64, Option<io::Error>)> {
        raw.clear();
        blocks.clear();
        let mut error = None;
        while blocks.len() < BLOCKS_PER_PIECE {
            match self.read_block(raw) {
                Ok(Some(b)) => blocks.push(b),
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if blocks.is_empty() && error.is_none() {
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        Some((seq, error))
    }
}

/// Inflate one block's deflate data into `out` (exactly its stated size) and check its
/// size and CRC.
fn inflate_block(
    d: &mut libdeflater::Decompressor,
    cdata: &[u8],
    block: &BlockMeta,
    out: &mut [u8],
) -> io::Result<()> {
    let n = d
        .deflate_decompress(cdata, out)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}")))?;
    if n != block.isize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "BGZF block size does not match its data",
        ));
    }
    let mut crc = libdeflater::Crc::new();
    crc.update(out);
    if crc.sum() != block.crc {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "BGZF block CRC mismatch",
        ));
    }
    Ok(())
}

/// Inflate a piece's blocks one after another into `out`; on a bad block, `out` keeps
/// the blocks before it and the error is returned.
fn inflate_piece(
    d: &mut libdeflater::Decompressor,
    raw: &[u8],
    blocks: &[BlockMeta],
    out: &mut Vec<u8>,
) -> Option<io::Error> {
    // Every byte is overwritten; only a grown tail is zeroed.
    out.resize(blocks.iter().map(|b| b.isize).sum(), 0);
    let mut at = 0;
    for b in blocks {
        if let Err(e) = inflate_block(d, &raw[b.start..b.end], b, &mut out[at..at + b.isize]) {
            out.truncate(at);
            return Some(e);
        }
        at += b.isize;
    }
    None
}

/// Takes BGZF pieces from the shared input and inflates them with its own
/// decompressor: the body of each worker thread, and the reading thread's share.
struct Inflater<R> {
    input: Arc<Mutex<BgzfInput<R>>>,
    d: libdeflater::Decompressor,
    raw: Vec<u8>,
    blocks: Vec<BlockMeta>,
    by_caller: bool,
}

impl<R: BufRead> Inflater<R> {
    fn new(input: Arc<Mutex<BgzfInput<R>>>, by_caller: bool) -> Self {
        Inflater {
            input,
            d: libdeflater::Decompressor::new(),
            raw: Vec::new(),
            blocks: Vec::with_capacity(BLOCKS_PER_PIECE),
            by_caller,
        }
    }
}

impl<R: BufRead + Send> Claim for Inflater<R> {
    fn claim(&mut self, mut out: Vec<u8>) -> Option<Piece> {
        let (seq, read_error) = self
            .input
            .lock()
            .expect("BGZF input lock")
            .read_piece(&mut self.raw, &mut self.blocks)?;
        let error = inflate_piece(&mut self.d, &self.raw, &self.blocks, &mut out).or(read_error);
        if error.is_some() {
            // Nothing after a bad block is needed: stop the other threads early.
            self.input.lock().expect("BGZF input lock").finished = true;
        }
        Some(Piece {
            seq,
            data: out,
            error,
            by_caller: self.by_caller,
        })
    }
}

/// BGZF on `threads` threads: `threads - 1` workers inflate pieces of
/// `BLOCKS_PER_PIECE` blocks into pooled buffers, and the caller reads the pieces back
/// in order; whenever the piece it needs is not ready yet, the caller inflates the next
/// one itself instead of waiting, so all `threads` share the decompression.
fn spawn_bgzf<'scope, R: BufRead + Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    input: BgzfInput<R>,
    threads: usize,
) -> PipeReader<'scope> {
    let workers = threads.saturating_sub(1).max(1);
    let input = Arc::new(Mutex::new(input));
    let helper: Box<dyn Claim + 'scope> = Box::new(Inflater::new(Arc::clone(&input), true));
    let (reader, pool, results) = PipeReader::new(pieces_in_flight(workers), Some(helper));
    for _ in 0..workers {
        let mut inflater = Inflater::new(Arc::clone(&input), false);
        let pool = Arc::clone(&pool);
        let results = results.clone();
        scope.spawn(move || {
            while let Some(out) = take_buffer(&pool) {
                let Some(piece) = inflater.claim(out) else {
                    return;
                };
                if results.send(piece).is_err() {
                    return;
                }
            }
        });
    }
    reader
}

/// BGZF on the calling thread: blocks are inflated straight into the caller's buffer
/// when it has room for them, else through a 64 KiB buffer; one decompressor and one
/// compressed-block buffer serve the whole file.
struct BgzfReader<R> {
    input: BgzfInput<R>,
    d: libdeflater::Decompressor,
    raw: Vec<u8>,
    /// A block that did not fit the caller's buffer, served from `pos`.
    spill: Vec<u8>,
    pos: usize,
    /// An error found after data was already returned, for the next read.
    error: Option<io::Error>,
}

impl<R: BufRead> BgzfReader<R> {
    fn new(input: BgzfInput<R>) -> Self {
        BgzfReader {
            input,
            d: libdeflater::Decompressor::new(),
            raw: Vec::new(),
            spill: Vec::new(),
            pos: 0,
            error: None,
        }
    }

    /// Fill `buf` with whole blocks while the next one surely fits (at least one block,
    /// or part of one through `spill`). An error after some blocks is kept for the next
    /// read, so the caller gets the good data before it.
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut written = 0;
        while written == 0 || buf.len() - written >= BGZF_MAX_BLOCK {
            match self.next_block(&mut buf[written..]) {
                Ok(Some(n)) => written += n,
                Ok(None) => break,
                Err(e) if written == 0 => return Err(e),
                Err(e) => {
                    self.error = Some(e);
                    break;
                }
            }
            if self.pos < self.spill.len() {
                break;
            }
        }
        Ok(written)
    }

    /// Inflate the next block into `buf`, or into `spill` when it does not fit (then
    /// `buf` gets its start); the bytes written to `buf`, `None` at the end.
    fn next_block(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.raw.clear();
        let Some(b) = self.input.read_block(&mut self.raw)? else {
            return Ok(None);
        };
        let cdata = &self.raw[b.start..b.end];
        if b.isize <= buf.len() {
            inflate_block(&mut self.d, cdata, &b, &mut buf[..b.isize])?;
            return Ok(Some(b.isize));
        }
        self.spill.resize(b.isize, 0);
        inflate_block(&mut self.d, cdata, &b, &mut self.spill)?;
        let n = buf.len();
        buf.copy_from_slice(&self.spill[..n]);
        self.pos = n;
        Ok(Some(n))
    }
}

impl<R: BufRead> Read for BgzfReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.spill.len() {
            let n = buf.len().min(self.spill.len() - self.pos);
            buf[..n].copy_from_slice(&self.spill[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        let result = match self.error.take() {
            Some(e) => Err(e),
            None if buf.is_empty() => Ok(0),
            None => {
                self.spill.clear();
                self.pos = 0;
                self.fill(buf)
            }
        };
        if result.is_err() {
            // Nothing after a bad block is read.
            self.input.finished = true;
        }
        result
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn detects_formats() {
        assert_eq!(detect(b">chr1\nACGT\n"), Compression::Plain);
        assert_eq!(
            detect(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]),
            Compression::Gzip
        );
        let bgzf = [
            0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0, 27, 0,
        ];
        assert_eq!(detect(&bgzf), Compression::Bgzf);
    }

    /// Seeded FASTA-like text: bases in 60-column lines.
    fn text(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|i| {
                if i % 61 == 60 {
                    return b'\n';
                }
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"ACGTacgtNA"[(x % 10) as usize]
            })
            .collect()
    }

    pub(crate) fn gzip_member(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).expect("compress");
        e.finish().expect("compress")
    }

    pub(crate) const BGZF_EOF: [u8; 28] = [
        0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0, 0x1b, 0, 3, 0, 0, 0, 0, 0,
        0, 0, 0, 0,
    ];

    fn bgzf_block(data: &[u8]) -> Vec<u8> {
        let mut c =
            libdeflater::Compressor::new(libdeflater::CompressionLvl::new(1).expect("level 1"));
        let mut cdata = vec![0u8; c.deflate_compress_bound(data.len())];
        let n = c.deflate_compress(data, &mut cdata).expect("compress");
        cdata.truncate(n);
        let bsize = u16::try_from(18 + cdata.len() + 8 - 1).expect("block fits");
        let mut block = vec![
            0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0,
        ];
        block.extend_from_slice(&bsize.to_le_bytes());
        block.extend_from_slice(&cdata);
        let mut crc = libdeflater::Crc::new();
        crc.update(data);
        block.extend_from_slice(&crc.sum().to_le_bytes());
        block.extend_from_slice(&(data.len() as u32).to_le_bytes());
        block
    }

    /// `data` cut into BGZF blocks of the given sizes (cycled), and where each block
    /// starts in the file and in `data`.
    pub(crate) fn bgzf(data: &[u8], sizes: &[usize]) -> (Vec<u8>, Vec<(usize, usize)>) {
        let mut file = Vec::new();
        let mut starts = Vec::new();
        let mut at = 0;
        for size in sizes.iter().cycle() {
            if at >= data.len() {
                break;
            }
            let end = (at + size).min(data.len());
            starts.push((file.len(), at));
            file.extend_from_slice(&bgzf_block(&data[at..end]));
            at = end;
        }
        (file, starts)
    }

    /// Sizes with full, odd and empty blocks, so pieces of `BLOCKS_PER_PIECE` blocks
    /// split everywhere.
    const SIZES: [usize; 7] = [65_280, 1, 0, 65_536, 30_000, 0, 777];

    struct ReadBack {
        data: Vec<u8>,
        error: Option<io::Error>,
        info: SourceInfo,
    }

    /// Read `bytes` (written to a file) with `threads` threads in reads of `chunk` bytes.
    fn read_file(bytes: &[u8], threads: usize, chunk: usize) -> ReadBack {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        f.write_all(bytes).expect("write");
        std::thread::scope(|scope| {
            let mut src = open(scope, f.path(), threads, true).expect("open");
            let mut data = Vec::new();
            let mut buf = vec![0u8; chunk];
            let mut error = None;
            loop {
                match src.reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => data.extend_from_slice(&buf[..n]),
                    Err(e) => {
                        // Reading on after an error gives it again.
                        let again = src.reader.read(&mut buf).expect_err("error again");
                        assert_eq!(again.to_string(), e.to_string());
                        error = Some(e);
                        break;
                    }
                }
            }
            let info = src.info();
            ReadBack { data, error, info }
        })
    }

    #[test]
    fn multi_member_gzip_on_one_and_two_threads() {
        let data = text(3 << 20, 7);
        let cuts = [0, 10, 10, 1_500_000, 1_500_001, data.len()];
        let file: Vec<u8> = cuts
            .windows(2)
            .flat_map(|w| gzip_member(&data[w[0]..w[1]]))
            .collect();
        for threads in [1, 2] {
            for chunk in [1000, 1 << 20] {
                let r = read_file(&file, threads, chunk);
                assert!(r.error.is_none(), "{:?}", r.error);
                assert!(r.data == data, "threads {threads}, chunk {chunk}");
                assert_eq!(r.info.bytes_read, file.len() as u64);
                assert_eq!(r.info.sha256, Some(to_hex(&Sha256::digest(&file))));
            }
        }
    }

    #[test]
    fn a_gzip_header_crc_is_checked() {
        let data = text(100_000, 16);
        let plain = gzip_member(&data);
        // The same member with FHCRC set and the CRC-16 of the header after it.
        let mut header = plain[..10].to_vec();
        header[3] |= 2;
        let crc16 = (libdeflater::crc32(&header) & 0xffff) as u16;
        let good = [&header[..], &crc16.to_le_bytes(), &plain[10..]].concat();
        let bad = [&header[..], &(crc16 ^ 1).to_le_bytes(), &plain[10..]].concat();
        for threads in [1, 2] {
            let r = read_file(&good, threads, 1 << 20);
            assert!(r.error.is_none(), "{:?}", r.error);
            assert!(r.data == data);
            assert!(read_file(&bad, threads, 1 << 20).error.is_some());
        }
    }

    #[test]
    fn truncated_gzip_gives_the_data_before_the_cut() {
        let data = text(2 << 20, 8);
        let mut file = gzip_member(&data);
        file.truncate(file.len() * 2 / 3);
        for threads in [1, 2] {
            let r = read_file(&file, threads, 1 << 20);
            let e = r.error.expect("truncated");
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
            assert!(data.starts_with(&r.data));
            assert!(r.data.len() > data.len() / 3, "{}", r.data.len());
            let msg = stream_error(Path::new("x.fa.gz"), Compression::Gzip, e).to_string();
            assert!(msg.contains("gzip stream is truncated"), "{msg}");
        }
    }

    #[test]
    fn bgzf_across_piece_boundaries() {
        let data = text(2 << 20, 9);
        let (mut file, starts) = bgzf(&data, &SIZES);
        assert!(starts.len() > 3 * BLOCKS_PER_PIECE);
        file.extend_from_slice(&BGZF_EOF);
        for threads in [1, 2, 3] {
            for chunk in [1000, 65_537, 70_000, 1 << 20] {
                let r = read_file(&file, threads, chunk);
                assert!(r.error.is_none(), "{:?}", r.error);
                assert!(r.data == data, "threads {threads}, chunk {chunk}");
                assert!(!r.info.bgzf_eof_missing);
                assert_eq!(r.info.bytes_read, file.len() as u64);
                assert_eq!(r.info.sha256, Some(to_hex(&Sha256::digest(&file))));
            }
        }
    }

    #[test]
    fn bgzf_of_empty_blocks() {
        for blocks in [0, 1, 40] {
            let mut file = bgzf_block(b"").repeat(blocks);
            file.extend_from_slice(&BGZF_EOF);
            for threads in [1, 2] {
                let r = read_file(&file, threads, 1 << 20);
                assert!(r.error.is_none(), "{:?}", r.error);
                assert!(r.data.is_empty());
                assert!(!r.info.bgzf_eof_missing);
            }
        }
    }

    #[test]
    fn bgzf_without_the_eof_block_is_read_and_flagged() {
        let data = text(1 << 20, 10);
        let (file, _) = bgzf(&data, &SIZES);
        for threads in [1, 2] {
            let r = read_file(&file, threads, 1 << 20);
            assert!(r.error.is_none(), "{:?}", r.error);
            assert!(r.data == data);
            assert!(r.info.bgzf_eof_missing);
        }
    }

    #[test]
    fn truncated_bgzf_gives_every_block_before_the_cut() {
        let data = text(3 << 19, 11);
        let (file, starts) = bgzf(&data, &SIZES);
        let (at, before) = starts[BLOCKS_PER_PIECE + 3];
        // Cut inside the deflate data, and inside the next block's header.
        for (cut, what) in [(at + 100, "failed to fill"), (at + 10, "block header")] {
            for threads in [1, 2, 3] {
                for chunk in [1000, 1 << 20] {
                    let r = read_file(&file[..cut], threads, chunk);
                    let e = r.error.expect("truncated");
                    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
                    assert!(e.to_string().contains(what), "{e}");
                    assert!(r.data == data[..before], "threads {threads}, chunk {chunk}");
                    let msg = stream_error(Path::new("x.fa.gz"), Compression::Bgzf, e);
                    assert!(
                        msg.to_string().contains("bgzf stream is truncated"),
                        "{msg}"
                    );
                }
            }
        }
    }

    #[test]
    fn bgzf_crc_mismatch_after_good_blocks() {
        let data = text(3 << 19, 12);
        let (mut file, starts) = bgzf(&data, &SIZES);
        file.extend_from_slice(&BGZF_EOF);
        let bad = 2 * BLOCKS_PER_PIECE + 5;
        let (at, before) = starts[bad];
        let (next, _) = starts[bad + 1];
        assert!(next - at > 26, "a block with data");
        file[next - 8] ^= 0xff;
        for threads in [1, 2, 3] {
            for chunk in [1000, 1 << 20] {
                let r = read_file(&file, threads, chunk);
                let e = r.error.expect("bad CRC");
                assert_eq!(e.to_string(), "BGZF block CRC mismatch");
                assert!(r.data == data[..before], "threads {threads}, chunk {chunk}");
            }
        }
    }

    #[test]
    fn bgzf_then_gzip_is_refused() {
        let data = text(200_000, 13);
        let (mut file, _) = bgzf(&data, &SIZES);
        file.extend_from_slice(&gzip_member(b">x\nACGT\n"));
        for threads in [1, 2] {
            let r = read_file(&file, threads, 1 << 20);
            let e = r.error.expect("mixed");
            assert!(e.to_string().contains("mixes BGZF"), "{e}");
            assert!(r.data == data);
        }
    }

    #[test]
    fn pieces_are_read_in_order_and_an_error_ends_them() {
        let (mut reader, pool, tx) = PipeReader::new(3, None);
        let piece = |seq: u64, data: &[u8], error: Option<&str>| Piece {
            seq,
            data: data.to_vec(),
            error: error.map(|m| io::Error::new(io::ErrorKind::InvalidData, m)),
            by_caller: false,
        };
        for p in [
            piece(2, b"", None),
            piece(4, b"never", None),
            piece(1, b"def", None),
            piece(3, b"gh", Some("bad block")),
            piece(0, b"abc", None),
        ] {
            tx.send(p).expect("send");
        }
        drop(tx);
        let mut out = Vec::new();
        let e = reader.read_to_end(&mut out).expect_err("bad block");
        assert_eq!(out, b"abcdefgh");
        assert_eq!(e.to_string(), "bad block");
        // Spent buffers went back to the pool (the empty one was never used).
        let pool = pool.lock().expect("pool");
        assert!(std::iter::from_fn(|| pool.try_recv().ok()).count() >= 3);
    }

    /// Hands out the given pieces in order, as if it decompressed them.
    struct Scripted(std::vec::IntoIter<(u64, &'static [u8])>);

    impl Claim for Scripted {
        fn claim(&mut self, _out: Vec<u8>) -> Option<Piece> {
            self.0.next().map(|(seq, data)| Piece {
                seq,
                data: data.to_vec(),
                error: None,
                by_caller: true,
            })
        }
    }

    #[test]
    fn the_reader_inflates_what_the_workers_have_not_taken() {
        // Alone: every piece comes from the reader's own share.
        let own = Scripted(vec![(0, &b"ab"[..]), (1, b""), (2, b"cd")].into_iter());
        let (mut reader, _pool, tx) = PipeReader::new(0, Some(Box::new(own)));
        drop(tx);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).expect("read");
        assert_eq!(out, b"abcd");
        // Mixed: the workers already sent pieces 1 and 3, the reader takes the others.
        let own = Scripted(vec![(0, &b"a"[..]), (2, b"c"), (4, b"e")].into_iter());
        let (mut reader, pool, tx) = PipeReader::new(2, Some(Box::new(own)));
        for (seq, data) in [(3, b"d"), (1, b"b")] {
            tx.send(Piece {
                seq,
                data: data.to_vec(),
                error: None,
                by_caller: false,
            })
            .expect("send");
        }
        drop(tx);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).expect("read");
        assert_eq!(out, b"abcde");
        // Only the workers' buffers went back to their pool.
        let pool = pool.lock().expect("pool");
        assert_eq!(std::iter::from_fn(|| pool.try_recv().ok()).count(), 4);
    }

    #[test]
    fn a_lost_piece_is_an_error_not_the_end() {
        let (mut reader, _pool, tx) = PipeReader::new(1, None);
        tx.send(Piece {
            seq: 1,
            data: b"late".to_vec(),
            error: None,
            by_caller: false,
        })
        .expect("send");
        drop(tx);
        let e = reader.read(&mut [0u8; 8]).expect_err("piece 0 never came");
        assert!(e.to_string().contains("stopped early"), "{e}");
    }

    #[test]
    fn a_reader_dropped_early_stops_its_threads() {
        use std::io::Write;
        let data = text(8 << 20, 14);
        let (mut bgzf_file, _) = bgzf(&data, &[65_280]);
        bgzf_file.extend_from_slice(&BGZF_EOF);
        for file in [gzip_member(&data), bgzf_file] {
            let mut f = tempfile::NamedTempFile::new().expect("tmp");
            f.write_all(&file).expect("write");
            for threads in [2, 4] {
                std::thread::scope(|scope| {
                    let mut src = open(scope, f.path(), threads, false).expect("open");
                    let mut buf = [0u8; 100];
                    src.reader.read_exact(&mut buf).expect("read");
                    assert_eq!(&buf[..], &data[..100]);
                });
            }
        }
    }

    #[test]
    fn hex_encoding() {
        assert_eq!(to_hex(&[0, 15, 255]), "000fff");
    }

    #[test]
    fn trailing_bytes_after_a_gzip_member_are_named() {
        let e = io::Error::new(io::ErrorKind::InvalidInput, "invalid gzip header");
        let msg = stream_error(Path::new("x.fa.gz"), Compression::Gzip, e).to_string();
        assert!(
            msg.contains("trailing bytes after the last gzip member"),
            "{msg}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_is_eisdir() {
        let dir = tempfile::tempdir().expect("dir");
        let err = std::thread::scope(|scope| open(scope, dir.path(), 1, false).err());
        match err.expect("a directory") {
            Error::Io { source, .. } => {
                assert_eq!(source.kind(), io::ErrorKind::IsADirectory);
                assert_eq!(source.raw_os_error(), Some(21));
            }
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn a_block_with_a_damaged_magic_number_is_not_bgzf() {
        let mut block = vec![
            0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0, 27, 0,
        ];
        assert!(is_bgzf_header(&block));
        block[0] ^= 1;
        assert!(!is_bgzf_header(&block));
    }
}
