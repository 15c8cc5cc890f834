//! Opening an input file as a stream of decompressed bytes: plain, gzip (all members of
//! a multi-member file), or BGZF (blocks decompressed in parallel).
//!
//! Threads never outlive the call that started them (`std::thread::scope`), so nothing
//! is left running across a `fork()`: DataLoader workers can use the core safely.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::Scope;

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

fn is_bgzf_header(h: &[u8]) -> bool {
    h.len() >= 18
        && h[0] == 0x1f
        && h[1] == 0x8b
        && h[2] == 8
        && h[3] & 4 != 0
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
}

impl Source<'_> {
    /// Facts gathered so far (call after the stream is exhausted).
    #[must_use]
    pub fn info(&self) -> SourceInfo {
        self.state.finish(self.file_size)
    }

    /// Size of the raw file in bytes.
    #[must_use]
    pub fn file_size(&self) -> u64 {
        self.file_size
    }
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
                Box::new(pipe(scope, dec))
            } else {
                Box::new(dec)
            }
        }
        Compression::Bgzf => {
            let workers = threads.max(1);
            let blocks = BgzfBlocks::new(buffered, Arc::clone(&state), workers);
            if threads > 1 {
                Box::new(pipe_batches(scope, blocks))
            } else {
                Box::new(BatchReader::new(blocks))
            }
        }
    };
    Ok(Source {
        reader,
        compression,
        state,
        file_size: meta.len(),
    })
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

/// Something that yields successive decompressed buffers.
trait Batches: Send {
    fn next_batch(&mut self) -> io::Result<Option<Vec<u8>>>;
}

/// Adapts a `Read` into batches of at most `READ_CHUNK` bytes.
struct ReadBatches<R>(R);

impl<R: Read + Send> Batches for ReadBatches<R> {
    fn next_batch(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut filled = 0;
        while filled < buf.len() {
            match self.0.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(None);
        }
        buf.truncate(filled);
        Ok(Some(buf))
    }
}

/// Serves a sequence of batches through `Read`.
struct BatchReader<B> {
    batches: B,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl<B: Batches> BatchReader<B> {
    fn new(batches: B) -> Self {
        BatchReader {
            batches,
            current: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

impl<B: Batches> Read for BatchReader<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.batches.next_batch()? {
                Some(b) => {
                    self.current = b;
                    self.pos = 0;
                }
                None => self.done = true,
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Receives batches produced on another thread.
struct ChannelBatches(Receiver<io::Result<Vec<u8>>>);

impl Batches for ChannelBatches {
    fn next_batch(&mut self) -> io::Result<Option<Vec<u8>>> {
        match self.0.recv() {
            Ok(Ok(b)) => Ok(Some(b)),
            Ok(Err(e)) => Err(e),
            Err(_) => Ok(None),
        }
    }
}

fn pipe<'scope, R: Read + Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    reader: R,
) -> impl Read + Send + 'scope {
    pipe_batches(scope, ReadBatches(reader))
}

/// Run `batches` on a scoped producer thread; the consumer reads through a bounded
/// channel. When the consumer stops early, the channel closes and the producer ends.
fn pipe_batches<'scope, B: Batches + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    mut batches: B,
) -> impl Read + Send + 'scope {
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(4);
    scope.spawn(move || loop {
        match batches.next_batch() {
            Ok(Some(b)) => {
                if tx.send(Ok(b)).is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    });
    BatchReader::new(ChannelBatches(rx))
}

/// One BGZF block's compressed payload.
struct RawBlock {
    cdata: Vec<u8>,
    crc: u32,
    isize: usize,
}

/// Reads BGZF blocks and decompresses them in batches, `workers` blocks at a time in
/// parallel (libdeflate per block).
struct BgzfBlocks<R> {
    inner: R,
    state: Arc<SourceState>,
    workers: usize,
    last_block_empty: bool,
    finished: bool,
}

const BLOCKS_PER_WORKER: usize = 32;

impl<R: BufRead + Send> BgzfBlocks<R> {
    fn new(inner: R, state: Arc<SourceState>, workers: usize) -> Self {
        BgzfBlocks {
            inner,
            state,
            workers,
            last_block_empty: false,
            finished: false,
        }
    }

    fn read_block(&mut self) -> io::Result<Option<RawBlock>> {
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
        let mut rest = vec![0u8; bsize - 18];
        self.inner.read_exact(&mut rest)?;
        let tail = rest.len() - 8;
        let crc = u32::from_le_bytes(rest[tail..tail + 4].try_into().expect("4 bytes"));
        let isize = u32::from_le_bytes(rest[tail + 4..].try_into().expect("4 bytes")) as usize;
        if isize > 65536 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "BGZF block claims more than 64 KiB of data",
            ));
        }
        rest.truncate(tail);
        Ok(Some(RawBlock {
            cdata: rest,
            crc,
            isize,
        }))
    }
}

fn inflate_block(block: &RawBlock, out: &mut [u8]) -> io::Result<()> {
    let mut d = libdeflater::Decompressor::new();
    let n = d
        .deflate_decompress(&block.cdata, out)
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

impl<R: BufRead + Send> Batches for BgzfBlocks<R> {
    fn next_batch(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.finished {
            return Ok(None);
        }
        let mut blocks = Vec::with_capacity(self.workers * BLOCKS_PER_WORKER);
        while blocks.len() < self.workers * BLOCKS_PER_WORKER {
            if let Some(b) = self.read_block()? {
                self.last_block_empty = b.isize == 0;
                blocks.push(b);
            } else {
                self.finished = true;
                *self.state.eof_block_seen.lock().expect("eof lock") = Some(self.last_block_empty);
                break;
            }
        }
        if blocks.is_empty() {
            return Ok(None);
        }
        let total: usize = blocks.iter().map(|b| b.isize).sum();
        let mut out = vec![0u8; total];
        let mut slices: Vec<(&RawBlock, &mut [u8])> = Vec::with_capacity(blocks.len());
        let mut rest = out.as_mut_slice();
        for b in &blocks {
            let (head, tail) = rest.split_at_mut(b.isize);
            slices.push((b, head));
            rest = tail;
        }
        if self.workers <= 1 || slices.len() < 2 {
            for (b, o) in &mut slices {
                inflate_block(b, o)?;
            }
        } else {
            let per = slices.len().div_ceil(self.workers);
            std::thread::scope(|s| {
                let handles: Vec<_> = slices
                    .chunks_mut(per)
                    .map(|chunk| {
                        s.spawn(move || -> io::Result<()> {
                            for (b, o) in chunk.iter_mut() {
                                inflate_block(b, o)?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .try_for_each(|h| h.join().expect("BGZF worker panicked"))
            })?;
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
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
