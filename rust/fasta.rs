//! Streaming FASTA parser. It splits the decompressed stream into header and sequence
//! lines and hands sequence bytes to a [`SeqSink`] in arbitrary chunks (a line, or part
//! of a very long line), so memory stays bounded whatever the line width.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;

use crate::alphabet::{CLASS, NOT_SEQ_MASK, SKIP};
use crate::error::{Error, Result};
use crate::source::{self, Compression, SourceInfo};

mod split;
pub use split::{read_fasta_split, MIN_SPLIT_BYTES};

const BUF_SIZE: usize = 1 << 20;
/// Longest header line accepted; longer ones are almost surely not FASTA.
pub const MAX_HEADER: usize = 1 << 20;
/// Bytes between two progress reports.
const PROGRESS_EVERY: u64 = 16 << 20;
/// UTF-8 byte-order mark, which Windows editors put before the first '>'.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// A byte that may not appear in a sequence line, at `offset` of the chunk handed over.
#[derive(Debug, Clone, Copy)]
pub struct BadByte {
    /// Offset of the byte in the chunk.
    pub offset: usize,
    /// The byte itself.
    pub byte: u8,
}

/// Receives the records of a FASTA file.
pub trait SeqSink {
    /// A record starts (its name is unique in the file).
    fn begin(&mut self, name: &str, description: &str) -> Result<()>;
    /// Sequence bytes of the current record: any chunking, may contain ignorable
    /// whitespace (see [`crate::alphabet::SKIP`]); rejects invalid bytes.
    fn bases(&mut self, chunk: &[u8]) -> std::result::Result<(), BadByte>;
    /// Whole sequence lines of the current record at the start of `text` (which begins
    /// a line), for sinks that can take many lines in one call: take as many as the
    /// sink likes, none of them holding a byte it would reject, and return the bytes
    /// taken (ending just after a `\n`) and the number of lines. The parser hands what
    /// is left to [`SeqSink::bases`] line by line. By default nothing is taken.
    fn lines(&mut self, _text: &[u8]) -> (usize, u64) {
        (0, 0)
    }
    /// Room for up to `bytes` more sequence bytes, asked before they are handed over:
    /// a sink that keeps the sequence in memory reserves it fallibly here, so that a
    /// huge record under a memory limit is an [`Error::OutOfMemory`], not an abort.
    fn room(&mut self, _bytes: usize) -> Result<()> {
        Ok(())
    }
    /// The current record ends.
    fn end(&mut self) -> Result<()>;
    /// No more records follow (the end of one piece of a split read): working memory
    /// can be freed while the sink waits for the other pieces.
    fn release(&mut self) {}
}

/// Options for [`read_fasta`].
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Decompression threads (1 = everything on the calling thread).
    pub threads: usize,
    /// Compute the SHA-256 of the raw file while reading.
    pub sha256: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            threads: 1,
            sha256: false,
        }
    }
}

/// What a complete read found.
#[derive(Debug, Clone)]
pub struct ReadSummary {
    /// Compression of the input.
    pub compression: Compression,
    /// Raw-file facts (size, hash, BGZF end-of-file marker).
    pub source: SourceInfo,
    /// Number of records.
    pub records: usize,
    /// Number of lines.
    pub lines: u64,
    /// Pieces of the file that held records, read in parallel (1: read as one stream).
    pub pieces: usize,
}

/// Progress callback: raw bytes read so far and the file size; returning an error
/// (usually [`Error::Cancelled`]) stops the read.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64) -> Result<()>;

/// The progress callback for one attempt, leaving it for the next.
pub fn reborrow<'b>(progress: &'b mut Option<Progress<'_>>) -> Option<Progress<'b>> {
    match progress {
        Some(cb) => Some(&mut **cb),
        None => None,
    }
}

/// Parse the FASTA file at `path` into `sink`.
pub fn read_fasta<S: SeqSink>(
    path: &Path,
    opts: ReadOptions,
    sink: &mut S,
    progress: Option<Progress<'_>>,
) -> Result<ReadSummary> {
    std::thread::scope(|scope| {
        let mut src = source::open(scope, path, opts.threads, opts.sha256)?;
        let compression = src.compression;
        let mut parser = Parser::new(path, sink);
        let mut buf = take_buffer();
        let parsed = parse_stream(&mut src, &mut parser, &mut buf, progress);
        keep_buffer(buf);
        parsed?;
        let source = src.finish(path)?;
        drop(src);
        Ok(ReadSummary {
            compression,
            source,
            records: parser.names.len(),
            lines: parser.line,
            pieces: 1,
        })
    })
}

thread_local! {
    /// The read buffer of the last read on this thread. A fresh 1 MiB buffer is zeroed
    /// (or page-faulted in) on every call, which took as long as the rest of the work
    /// for a phage-sized file; keeping one per thread lets repeated reads skip that.
    static SPARE_BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A [`BUF_SIZE`] read buffer: this thread's spare one, or a new one.
fn take_buffer() -> Vec<u8> {
    let buf = SPARE_BUFFER.take();
    if buf.len() == BUF_SIZE {
        buf
    } else {
        vec![0; BUF_SIZE]
    }
}

/// Keep `buf` for the next read on this thread, unless it grew for a long header.
fn keep_buffer(buf: Vec<u8>) {
    if buf.len() == BUF_SIZE {
        SPARE_BUFFER.set(buf);
    }
}

/// Read the whole stream of `src` through `buf` into `parser`.
fn parse_stream<S: SeqSink>(
    src: &mut source::Source<'_>,
    parser: &mut Parser<'_, S>,
    buf: &mut Vec<u8>,
    progress: Option<Progress<'_>>,
) -> Result<()> {
    let path = parser.path;
    let compression = src.compression;
    let file_size = src.file_size();
    let mut report = progress;
    let mut last_report = 0u64;
    let mut filled = 0usize;
    loop {
        let n = match src.reader.read(&mut buf[filled..]) {
            Ok(n) => n,
            // A signal interrupted the read (a pipe, a terminal): the progress callback
            // decides (the Python layer runs the signal's handler there); without one,
            // the read stops.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => match report.as_mut() {
                Some(cb) => {
                    cb(src.state.bytes_read.load(Ordering::Relaxed), file_size)?;
                    continue;
                }
                None => return Err(Error::Cancelled),
            },
            Err(e) => return Err(source::stream_error(path, compression, e)),
        };
        let eof = n == 0;
        filled += n;
        let consumed = parser.feed(&buf[..filled], eof)?;
        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
        if filled == buf.len() {
            // A header line longer than the buffer: grow up to the limit.
            if buf.len() >= MAX_HEADER {
                return Err(parser.error("header line is longer than 1 MiB"));
            }
            buf.resize(buf.len() * 2, 0);
        }
        if let Some(cb) = report.as_mut() {
            let done = src.state.bytes_read.load(Ordering::Relaxed);
            if done - last_report >= PROGRESS_EVERY || eof {
                last_report = done;
                cb(done, file_size)?;
            }
        }
        if eof {
            break;
        }
    }
    parser.finish()
}

/// Where a parser reading one piece of a split file stands.
#[derive(Default)]
struct PieceState {
    /// File offset of the first byte of the buffer being fed.
    base: u64,
    /// A header at this file offset or later is left for the next piece.
    stop_at: u64,
    /// Whether `feed` stopped at such a header.
    stopped: bool,
    /// Record names with the line of their header, unchecked: duplicates may lie in
    /// other pieces.
    names: Vec<(String, u64)>,
}

fn no_records(path: &Path, line: u64) -> Error {
    Error::format(
        path,
        line,
        None,
        "no FASTA records found (empty input or no '>' header line)",
    )
}

fn duplicate(path: &Path, line: u64, name: &str, first: u64) -> Error {
    Error::format(
        path,
        line,
        Some(name),
        format!("duplicate record name '{name}' (first defined on line {first})"),
    )
}

struct Parser<'a, S> {
    path: &'a Path,
    sink: &'a mut S,
    /// Set when this parser reads one piece of a split file.
    piece: Option<PieceState>,
    /// 1-based number of the line being read.
    line: u64,
    /// Column (0-based) reached in the current sequence line.
    col: u64,
    at_line_start: bool,
    at_file_start: bool,
    current: Option<String>,
    names: HashMap<String, u64>,
}

impl<'a, S: SeqSink> Parser<'a, S> {
    fn new(path: &'a Path, sink: &'a mut S) -> Self {
        Parser {
            path,
            sink,
            piece: None,
            line: 1,
            col: 0,
            at_line_start: true,
            at_file_start: true,
            current: None,
            names: HashMap::new(),
        }
    }

    /// Whether the header at `pos` of the buffer belongs to the next piece of a split
    /// file (then the piece is over). A header on the first line has no line break
    /// before it, so no other piece can find it: it stays with the first piece.
    fn piece_ends(&mut self, pos: usize) -> bool {
        let line = self.line;
        self.piece.as_mut().is_some_and(|p| {
            p.stopped = line > 1 && p.base + pos as u64 >= p.stop_at;
            p.stopped
        })
    }

    fn error(&self, msg: impl Into<String>) -> Error {
        Error::format(self.path, self.line, self.current.as_deref(), msg)
    }

    /// Consume complete lines (and partial sequence lines) of `buf`; returns how many
    /// bytes were consumed. Unconsumed bytes are a partial header line.
    fn feed(&mut self, buf: &[u8], eof: bool) -> Result<usize> {
        let mut pos = 0;
        if self.at_file_start {
            if buf.len() < BOM.len() && !eof && BOM.starts_with(buf) {
                return Ok(0);
            }
            self.at_file_start = false;
            if buf.starts_with(BOM) {
                pos = BOM.len();
            }
        }
        while pos < buf.len() {
            if self.at_line_start {
                match buf[pos] {
                    b'>' if self.piece_ends(pos) => return Ok(pos),
                    b'>' => {
                        let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) else {
                            if !eof {
                                return Ok(pos);
                            }
                            self.header(&buf[pos + 1..])?;
                            return Ok(buf.len());
                        };
                        self.header(&buf[pos + 1..pos + nl])?;
                        self.line += 1;
                        pos += nl + 1;
                        continue;
                    }
                    b'\n' => {
                        self.line += 1;
                        pos += 1;
                        continue;
                    }
                    _ => {
                        if self.current.is_none() {
                            let Some(skip) = self.blank_before_header(&buf[pos..], eof)? else {
                                return Ok(pos);
                            };
                            if buf[pos + skip - 1] == b'\n' {
                                self.line += 1;
                            }
                            pos += skip;
                            continue;
                        }
                        self.sink.room(buf.len() - pos)?;
                        let (taken, lines) = self.sink.lines(&buf[pos..]);
                        if taken > 0 {
                            pos += taken;
                            self.line += lines;
                            continue;
                        }
                        self.at_line_start = false;
                        self.col = 0;
                    }
                }
            }
            let rest = &buf[pos..];
            let (chunk, next) = match memchr::memchr(b'\n', rest) {
                Some(nl) => (&rest[..nl], Some(nl + 1)),
                None => (rest, None),
            };
            self.sink.room(chunk.len())?;
            if let Err(bad) = self.sink.bases(chunk) {
                return Err(self.bad_byte(bad));
            }
            if let Some(step) = next {
                pos += step;
                self.line += 1;
                self.at_line_start = true;
            } else {
                self.col += chunk.len() as u64;
                pos = buf.len();
            }
        }
        Ok(pos)
    }

    /// Before the first header only blank lines may appear; whitespace-only lines count
    /// as blank (a CRLF file's empty line is a lone CR). Returns the length of the blank
    /// line to skip, or `None` when it continues past the end of `rest`.
    fn blank_before_header(&self, rest: &[u8], eof: bool) -> Result<Option<usize>> {
        let ws = rest
            .iter()
            .take_while(|&&b| CLASS[b as usize] == SKIP)
            .count();
        match rest.get(ws) {
            Some(b'\n') => Ok(Some(ws + 1)),
            Some(&first) => Err(self.before_header(first)),
            None if eof => Ok(Some(ws)),
            None => Ok(None),
        }
    }

    fn before_header(&self, first: u8) -> Error {
        if CLASS[first as usize] & NOT_SEQ_MASK == 0 {
            return self.error("sequence data before the first '>' header line");
        }
        if first == b'>' {
            return self.error("a header line must start with '>' in its first column");
        }
        let what = if first.is_ascii_graphic() {
            format!("'{}'", first as char)
        } else {
            format!("byte 0x{first:02x}")
        };
        let hint = match first {
            b'@' => " (this looks like FASTQ, which is not read)",
            0xfe | 0xff => " (UTF-16 text? save the file as ASCII or UTF-8)",
            _ => "",
        };
        self.error(format!(
            "not a FASTA file: {what} where a '>' header line was expected{hint}"
        ))
    }

    fn bad_byte(&self, bad: BadByte) -> Error {
        let col = self.col + bad.offset as u64 + 1;
        let what = if bad.byte.is_ascii_graphic() {
            format!("'{}'", bad.byte as char)
        } else {
            format!("byte 0x{:02x}", bad.byte)
        };
        let hint = if bad.byte == b'>' {
            " ('>' must start a line)"
        } else if bad.byte.is_ascii_alphabetic() {
            " (not a nucleotide or IUPAC code)"
        } else {
            ""
        };
        self.error(format!(
            "invalid sequence character {what} at column {col}{hint}"
        ))
    }

    fn header(&mut self, raw: &[u8]) -> Result<()> {
        self.end_record()?;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = std::str::from_utf8(raw)
            .map_err(|e| self.error(format!("header line is not valid UTF-8 ({e})")))?;
        if text.contains('\r') {
            return Err(self.error(
                "header line contains a carriage return: the file seems to use CR-only \
                 line endings (classic Mac OS); convert them to LF",
            ));
        }
        if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\t') {
            return Err(self.error(format!(
                "header line contains control character U+{:04X}",
                c as u32
            )));
        }
        let trimmed = text.trim_start();
        let (name, description) = match trimmed.find(char::is_whitespace) {
            Some(i) => (&trimmed[..i], trimmed[i..].trim()),
            None => (trimmed, ""),
        };
        if name.is_empty() {
            return Err(self.error("header line has no record name"));
        }
        if let Some(piece) = &mut self.piece {
            piece.names.push((name.to_owned(), self.line));
        } else if let Some(&first) = self.names.get(name) {
            return Err(duplicate(self.path, self.line, name, first));
        } else {
            self.names.insert(name.to_owned(), self.line);
        }
        self.sink.begin(name, description)?;
        self.current = Some(name.to_owned());
        self.at_line_start = true;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.end_record()?;
        if self.names.is_empty() {
            return Err(no_records(self.path, self.line));
        }
        Ok(())
    }

    /// End the record being read, if any.
    fn end_record(&mut self) -> Result<()> {
        if self.current.is_some() {
            self.sink.end()?;
            self.current = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alphabet::{CLASS, INVALID, SKIP};
    use std::io::Write;

    #[derive(Default)]
    pub(super) struct Collect {
        pub(super) records: Vec<(String, String, Vec<u8>)>,
    }

    impl SeqSink for Collect {
        fn begin(&mut self, name: &str, description: &str) -> Result<()> {
            self.records
                .push((name.into(), description.into(), Vec::new()));
            Ok(())
        }
        fn bases(&mut self, chunk: &[u8]) -> std::result::Result<(), BadByte> {
            let seq = &mut self.records.last_mut().expect("record").2;
            for (offset, &byte) in chunk.iter().enumerate() {
                match CLASS[byte as usize] {
                    INVALID => return Err(BadByte { offset, byte }),
                    SKIP => {}
                    _ => seq.push(byte),
                }
            }
            Ok(())
        }
        fn end(&mut self) -> Result<()> {
            Ok(())
        }
    }

    fn parse(bytes: &[u8]) -> Result<Collect> {
        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        f.write_all(bytes).expect("write");
        let mut sink = Collect::default();
        read_fasta(f.path(), ReadOptions::default(), &mut sink, None)?;
        Ok(sink)
    }

    #[test]
    fn parses_records_crlf_blank_lines() {
        let c = parse(b">a first one\r\nACGT\r\nac\r\n\r\n>b\nNNRY\n\n>empty\n").expect("ok");
        assert_eq!(c.records.len(), 3);
        assert_eq!(c.records[0].0, "a");
        assert_eq!(c.records[0].1, "first one");
        assert_eq!(c.records[0].2, b"ACGTac");
        assert_eq!(c.records[1].2, b"NNRY");
        assert!(c.records[2].2.is_empty());
    }

    #[test]
    fn reports_line_and_record_of_bad_bytes() {
        let err = parse(b">a\nACGT\nAC1T\n").err().expect("error");
        let msg = err.to_string();
        assert!(msg.contains(":3: record 'a'"), "{msg}");
        assert!(msg.contains("column 3"), "{msg}");
    }

    #[test]
    fn rejects_duplicates_and_missing_headers() {
        assert!(parse(b">a\nA\n>a\nC\n")
            .err()
            .expect("dup")
            .to_string()
            .contains("duplicate"));
        assert!(parse(b"ACGT\n>a\nA\n")
            .err()
            .expect("no header")
            .to_string()
            .contains("before the first"));
        assert!(parse(b"")
            .err()
            .expect("empty")
            .to_string()
            .contains("no FASTA"));
    }

    #[test]
    fn skips_byte_order_mark_and_blank_crlf_lines_before_the_first_header() {
        let c = parse(b"\xef\xbb\xbf>a\nAC\n").expect("BOM");
        assert_eq!(c.records[0].0, "a");
        assert_eq!(c.records[0].2, b"AC");
        let c = parse(b"\r\n \t\r\n>a\r\nACGT\r\n").expect("blank CRLF lines");
        assert_eq!(c.records[0].2, b"ACGT");
        let err = parse(b"\r\n\r\n  NN\n>a\nA\n")
            .err()
            .expect("sequence first");
        assert!(
            err.to_string().contains(":3: sequence data before"),
            "{err}"
        );
    }

    #[test]
    fn names_what_a_non_fasta_file_looks_like() {
        let msg = |bytes: &[u8]| parse(bytes).err().expect("error").to_string();
        assert!(msg(b"##gff-version 3\n").contains("not a FASTA file: '#'"));
        assert!(msg(b"@read1\nACGT\n+\nIIII\n").contains("FASTQ"));
        assert!(msg(b"\xff\xfe>\x00").contains("UTF-16"));
        assert!(msg(b"  >a\nAC\n").contains("must start with '>' in its first column"));
        assert!(msg(b">a\rACGT\rAC\r").contains("CR-only line endings"));
    }

    #[test]
    fn duplicate_error_names_the_record() {
        match parse(b">a\nA\n>b\nC\n>a\nG\n").err().expect("dup") {
            Error::Format { line, record, .. } => {
                assert_eq!(line, 5);
                assert_eq!(record.as_deref(), Some("a"));
            }
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn header_limit_is_one_mib() {
        let mut text = vec![b'>'; 1];
        text.extend(std::iter::repeat_n(b'x', MAX_HEADER - 100));
        text.extend_from_slice(b"\nACGT\n");
        assert_eq!(parse(&text).expect("below the limit").records[0].2, b"ACGT");
        text.splice(2..2, std::iter::repeat_n(b'y', 200));
        let err = parse(&text).err().expect("above the limit").to_string();
        assert!(err.contains("longer than 1 MiB"), "{err}");
    }

    #[test]
    fn read_buffer_is_kept_per_thread() {
        SPARE_BUFFER.take();
        assert_eq!(parse(b">a\nACGT\n").expect("ok").records[0].2, b"ACGT");
        let kept = SPARE_BUFFER.take();
        assert_eq!(kept.len(), BUF_SIZE);
        let at = kept.as_ptr() as usize;
        SPARE_BUFFER.set(kept);
        // The kept buffer is reused, stale bytes and all, with the same results.
        assert_eq!(parse(b">b\nGG\n").expect("ok").records[0].2, b"GG");
        let kept = SPARE_BUFFER.take();
        assert_eq!(kept.as_ptr() as usize, at);
        SPARE_BUFFER.set(kept);
        // A failed read keeps it too.
        let mut text = b">".to_vec();
        text.extend(std::iter::repeat_n(b'x', BUF_SIZE + 10));
        assert!(parse(&text).is_err());
        assert_eq!(SPARE_BUFFER.take().len(), BUF_SIZE);
    }
}
