//! VCF reading: the data records of a plain, gzip or BGZF VCF as raw columns (line,
//! CHROM, POS, ID, REF, ALT), in file order. Nothing is classified or normalised here:
//! the text is kept as written, for the Python layer to interpret.
//!
//! The file is opened by [`crate::source`], exactly like a FASTA file. Lines are cut
//! here (so that every error names its line, and a line too long to be VCF is refused
//! before it fills memory); each line is then parsed by noodles-vcf: header lines by
//! its header parser, data lines by its record reader. Reading rules:
//!
//! - a leading UTF-8 byte-order mark is skipped; lines end at `\n`, a `\r` before it is
//!   dropped (CRLF); blank lines are skipped (but counted in line numbers);
//! - the header is the lines starting with `#`, from `##fileformat=...` to the
//!   `#CHROM` line, which is required; no `#` line may follow it;
//! - a data line has at least 8 tab-separated, non-empty columns (or 10 and more with
//!   FORMAT and samples); POS is a whole number from 1 to `i64::MAX`.

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use noodles_vcf as vcf;

use crate::error::{Error, Result};
use crate::source::{self, Compression, SourceInfo};

const BUF_SIZE: usize = 1 << 20;
/// Longest line accepted: far beyond a real VCF line (a million samples), so a file
/// without line breaks is refused before it exhausts memory.
pub const MAX_LINE: usize = 1 << 30;
/// Bytes between two progress reports.
const PROGRESS_EVERY: u64 = 16 << 20;
/// UTF-8 byte-order mark, which Windows editors put before the first '#'.
const BOM: &[u8] = b"\xef\xbb\xbf";
/// The columns of a data line, in order; any later column is a sample's.
const COLUMNS: [&str; 9] = [
    "CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT",
];
/// Characters of the input quoted in an error message, at most.
const QUOTE_MAX: usize = 60;

/// Progress callback: raw bytes read so far and the file size; returning an error
/// (usually [`Error::Cancelled`]) stops the read.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64) -> Result<()>;

/// A column of strings kept end to end in one buffer (one allocation per column, not
/// one per value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StrColumn {
    text: String,
    ends: Vec<usize>,
}

impl StrColumn {
    /// Append `value`, or [`Error::OutOfMemory`] when there is no room for it.
    fn push(&mut self, value: &str) -> Result<()> {
        let oom = || Error::OutOfMemory("the VCF's columns".to_owned());
        self.text.try_reserve(value.len()).map_err(|_| oom())?;
        self.ends.try_reserve(1).map_err(|_| oom())?;
        self.text.push_str(value);
        self.ends.push(self.text.len());
        Ok(())
    }

    /// Number of values.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the column holds no value.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The values in order.
    #[must_use]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.ends.iter().enumerate().map(|(i, &end)| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.text[start..end]
        })
    }
}

/// The data records of a VCF, one entry per record in every column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VcfRecords {
    /// 1-based line of the record in the decompressed text (header lines counted).
    pub line: Vec<u64>,
    /// CHROM as written.
    pub chrom: StrColumn,
    /// POS as written (1-based).
    pub pos: Vec<u64>,
    /// ID as written ("." when missing).
    pub id: StrColumn,
    /// REF as written.
    pub ref_bases: StrColumn,
    /// ALT as written: "T", "T,G", "<DEL>", "." ...
    pub alt: StrColumn,
}

impl VcfRecords {
    /// Number of records.
    #[must_use]
    pub fn len(&self) -> usize {
        self.line.len()
    }

    /// Whether there is no record.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.line.is_empty()
    }

    fn push(&mut self, line: u64, record: &vcf::Record, pos: u64) -> Result<()> {
        let oom = || Error::OutOfMemory("the VCF's columns".to_owned());
        self.line.try_reserve(1).map_err(|_| oom())?;
        self.pos.try_reserve(1).map_err(|_| oom())?;
        self.line.push(line);
        self.pos.push(pos);
        self.chrom.push(record.reference_sequence_name())?;
        self.id.push(or_missing(record.ids().as_ref()))?;
        self.ref_bases.push(record.reference_bases())?;
        self.alt.push(or_missing(record.alternate_bases().as_ref()))
    }
}

/// noodles reads a missing ID or ALT (".") as empty; the columns keep the file's ".".
fn or_missing(value: &str) -> &str {
    if value.is_empty() {
        "."
    } else {
        value
    }
}

/// A whole VCF read into columns.
#[derive(Debug, Clone)]
pub struct VcfRead {
    /// The data records.
    pub records: VcfRecords,
    /// Compression of the input.
    pub compression: Compression,
    /// Raw-file facts (size, BGZF end-of-file marker).
    pub source: SourceInfo,
    /// Lines in the decompressed text.
    pub lines: u64,
}

/// Read every data record of the VCF at `path` (plain, gzip or BGZF), decompressing
/// on `threads` threads.
pub fn read_vcf(path: &Path, threads: usize, progress: Option<Progress<'_>>) -> Result<VcfRead> {
    std::thread::scope(|scope| {
        let mut src = source::open(scope, path, threads, false)?;
        let (compression, file_size) = (src.compression, src.file_size());
        let mut input = Lines {
            reader: BufReader::with_capacity(BUF_SIZE, &mut src.reader),
            path,
            compression,
            bytes_read: &src.state.bytes_read,
            file_size,
            progress,
            last_report: 0,
            line: 0,
            buf: Vec::new(),
        };
        read_header(&mut input)?;
        let records = read_records(&mut input)?;
        input.report(true)?;
        let lines = input.line;
        drop(input);
        let source = src.finish(path)?;
        Ok(VcfRead {
            records,
            compression,
            source,
            lines,
        })
    })
}

/// The decompressed text, line by line.
struct Lines<'a, 'p, R> {
    reader: BufReader<R>,
    path: &'a Path,
    compression: Compression,
    bytes_read: &'a AtomicU64,
    file_size: u64,
    progress: Option<Progress<'p>>,
    last_report: u64,
    /// Lines read so far (the number of the line in `buf`).
    line: u64,
    /// The current line, without its line break.
    buf: Vec<u8>,
}

impl<R: Read> Lines<'_, '_, R> {
    /// An error at `line` (in the record on `record`).
    fn error(&self, line: u64, record: Option<&str>, msg: impl Into<String>) -> Error {
        Error::vcf(self.path, line, record, msg)
    }

    /// Fill the read buffer when it is empty; `self.reader.buffer()` is then the text
    /// that follows (empty at the end of the file).
    fn fill(&mut self) -> Result<()> {
        loop {
            match self.reader.fill_buf() {
                Ok(_) => break,
                // A signal interrupted the read (a FIFO, a terminal): the progress
                // callback decides (the Python layer runs the signal's handler there);
                // without one, the read stops.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => match self.progress.as_mut() {
                    Some(cb) => cb(self.bytes_read.load(Ordering::Relaxed), self.file_size)?,
                    None => return Err(Error::Cancelled),
                },
                Err(e) => return Err(self.stream_error(e)),
            }
        }
        self.report(false)
    }

    /// Tell the progress callback how far the read is, every [`PROGRESS_EVERY`] bytes
    /// and at the end.
    fn report(&mut self, end: bool) -> Result<()> {
        if let Some(cb) = self.progress.as_mut() {
            let done = self.bytes_read.load(Ordering::Relaxed);
            if end || done - self.last_report >= PROGRESS_EVERY {
                self.last_report = done;
                cb(done, self.file_size)?;
            }
        }
        Ok(())
    }

    /// A read error: for a compressed file, a VCF error at the line being read (the
    /// stream is corrupt or truncated); for a plain one, the I/O error.
    fn stream_error(&self, e: io::Error) -> Error {
        match source::stream_error(self.path, self.compression, e) {
            Error::Compression { msg, .. } => self.error(self.line + 1, None, msg),
            other => other,
        }
    }

    /// Skip a byte-order mark at the start of the text.
    fn skip_bom(&mut self) -> Result<()> {
        self.fill()?;
        if self.reader.buffer().starts_with(BOM) {
            self.reader.consume(BOM.len());
        }
        Ok(())
    }

    /// The first byte of the next line, `None` at the end of the file.
    fn peek(&mut self) -> Result<Option<u8>> {
        self.fill()?;
        Ok(self.reader.buffer().first().copied())
    }

    /// Read the next line into `self.buf`; false at the end of the file.
    fn next_line(&mut self) -> Result<bool> {
        self.buf.clear();
        let mut found = false;
        loop {
            self.fill()?;
            let next = self.reader.buffer();
            if next.is_empty() {
                break;
            }
            found = true;
            let (take, ends) = match memchr::memchr(b'\n', next) {
                Some(i) => (i + 1, true),
                None => (next.len(), false),
            };
            if self.buf.len() + take > MAX_LINE {
                return Err(self.error(self.line + 1, None, "line is longer than 1 GiB"));
            }
            if self.buf.try_reserve(take).is_err() {
                return Err(Error::OutOfMemory(format!("line {}", self.line + 1)));
            }
            self.buf.extend_from_slice(&next[..take]);
            self.reader.consume(take);
            if ends {
                break;
            }
        }
        if !found {
            return Ok(false);
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        Ok(true)
    }
}

/// Read and check the header, up to and including the `#CHROM` line.
fn read_header<R: Read>(input: &mut Lines<'_, '_, R>) -> Result<()> {
    let mut parser = vcf::header::Parser::default();
    let mut header_lines = 0u64;
    input.skip_bom()?;
    loop {
        // A line that cannot be a header line is not read (it may be a huge binary one).
        let Some(first) = input.peek()? else {
            let at = input.line + 1;
            return Err(if header_lines == 0 {
                input.error(at, None, "empty file: no VCF header")
            } else {
                input.error(at, None, "missing the #CHROM header line")
            });
        };
        if !matches!(first, b'#' | b'\n' | b'\r') {
            let at = input.line + 1;
            return Err(if header_lines == 0 {
                input.error(
                    at,
                    None,
                    "not a VCF file: it must start with a ##fileformat=VCFv4.x header line",
                )
            } else {
                input.error(
                    at,
                    None,
                    "missing the #CHROM header line before the first record",
                )
            });
        }
        input.next_line()?;
        let line = &input.buf;
        if line.is_empty() {
            continue;
        }
        header_lines += 1;
        let is_chrom = line.starts_with(b"#CHROM");
        if let Err(e) = parser.parse_partial(line) {
            let what = if header_lines == 1 {
                "the VCF header must start with a ##fileformat=VCFv4.x line"
            } else if is_chrom {
                "bad #CHROM header line (it lists the columns, separated by tabs: \
                 #CHROM POS ID REF ALT QUAL FILTER INFO, then FORMAT and sample names)"
            } else {
                "bad header line"
            };
            return Err(input.error(input.line, None, format!("{what}: {}", chain(&e))));
        }
        if is_chrom {
            return Ok(());
        }
    }
}

/// Read the data lines after the header.
fn read_records<R: Read>(input: &mut Lines<'_, '_, R>) -> Result<VcfRecords> {
    let mut records = VcfRecords::default();
    let mut record = vcf::Record::default();
    while input.next_line()? {
        let line = &input.buf[..];
        if line.is_empty() {
            continue;
        }
        if line[0] == b'#' {
            return Err(input.error(
                input.line,
                None,
                "a header line after the #CHROM line (header lines must come before it)",
            ));
        }
        if let Err(e) = vcf::io::Reader::new(line).read_record(&mut record) {
            let chrom = first_column(line);
            return Err(input.error(input.line, chrom.as_deref(), bad_line(line, &e)));
        }
        let pos = match record.variant_start() {
            Some(Ok(p)) => u64::try_from(usize::from(p))
                .ok()
                .filter(|&p| i64::try_from(p).is_ok()),
            _ => None,
        };
        let Some(pos) = pos else {
            let (chrom, raw) = (first_column(line), column(line, 1));
            return Err(input.error(input.line, chrom.as_deref(), bad_position(&raw)));
        };
        records.push(input.line, &record, pos)?;
    }
    Ok(records)
}

/// The CHROM of a data line, shortened for a message, when it has one (a line without
/// a tab has no columns to speak of).
fn first_column(line: &[u8]) -> Option<String> {
    if !line.contains(&b'\t') {
        return None;
    }
    Some(column(line, 0)).filter(|c| !c.is_empty())
}

/// Column `i` of a data line as text (shortened for a message).
fn column(line: &[u8], i: usize) -> String {
    let raw = line.split(|&b| b == b'\t').nth(i).unwrap_or_default();
    quote(&String::from_utf8_lossy(raw))
}

/// `text`, cut to [`QUOTE_MAX`] characters.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_MAX) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

/// What is wrong with a data line that noodles refused, in words.
fn bad_line(line: &[u8], e: &io::Error) -> String {
    if std::str::from_utf8(line).is_err() {
        return "the line is not UTF-8 text".to_owned();
    }
    let columns: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
    let n = columns.len();
    if n < 8 {
        let spaces = if line.contains(&b' ') {
            " (are the columns separated by spaces instead of tabs?)"
        } else {
            ""
        };
        let s = if n == 1 { "" } else { "s" };
        return format!(
            "{n} column{s}, but a VCF data line has at least 8, separated by tabs \
             (CHROM POS ID REF ALT QUAL FILTER INFO){spaces}"
        );
    }
    if let Some(i) = columns.iter().position(|c| c.is_empty()) {
        let name = COLUMNS.get(i).copied().unwrap_or("sample");
        return format!("column {} ({name}) is empty", i + 1);
    }
    if n == COLUMNS.len() {
        return "a FORMAT column with no sample column after it".to_owned();
    }
    format!("not a VCF data line: {}", chain(e))
}

/// What is wrong with a POS that is not a position from 1 to `i64::MAX`, in words.
fn bad_position(raw: &str) -> String {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = raw.strip_prefix('+').unwrap_or(raw);
    if digits(unsigned) && unsigned.bytes().all(|b| b == b'0') {
        "POS is 0, but VCF positions start at 1".to_owned()
    } else if digits(unsigned) {
        format!("POS {raw} is too large (at most {})", i64::MAX)
    } else if raw.strip_prefix('-').is_some_and(digits) {
        format!("POS {raw} is negative, but VCF positions start at 1")
    } else {
        format!("POS '{raw}' is not a number")
    }
}

/// An error and its causes, joined by ": ".
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::source::tests::{bgzf, gzip_member, BGZF_EOF};
    use crate::test_rng::XorShift;

    const HEADER: &str = "##fileformat=VCFv4.2\n\
        ##contig=<ID=chr1,length=1000>\n\
        ##INFO=<ID=DP,Number=1,Type=Integer,Description=\"Depth\">\n\
        ##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n\
        #CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n";

    /// (line, chrom, pos, id, ref, alt) of every record.
    type Row = (u64, String, u64, String, String, String);

    fn rows(r: &VcfRecords) -> Vec<Row> {
        let columns = r
            .chrom
            .iter()
            .zip(r.id.iter())
            .zip(r.ref_bases.iter().zip(r.alt.iter()));
        r.line
            .iter()
            .zip(&r.pos)
            .zip(columns)
            .map(|((&line, &pos), ((c, i), (rf, a)))| {
                (line, c.into(), pos, i.into(), rf.into(), a.into())
            })
            .collect()
    }

    fn row(line: u64, chrom: &str, pos: u64, id: &str, rf: &str, alt: &str) -> Row {
        (line, chrom.into(), pos, id.into(), rf.into(), alt.into())
    }

    fn read_bytes(bytes: &[u8]) -> Result<VcfRead> {
        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        f.write_all(bytes).expect("write");
        read_vcf(f.path(), 1, None)
    }

    /// The error of reading `bytes`: (line, record, message).
    fn vcf_error(bytes: &[u8]) -> (u64, Option<String>, String) {
        match read_bytes(bytes) {
            Err(Error::Vcf {
                line, record, msg, ..
            }) => (line, record, msg),
            Err(other) => panic!("not a VCF error: {other}"),
            Ok(r) => panic!("read {} records", r.records.len()),
        }
    }

    /// The lines `line(1)` to `line(n)`.
    fn numbered(n: u32, line: impl Fn(u32) -> String) -> String {
        (1..=n).fold(String::new(), |text, i| text + &line(i))
    }

    fn with_header(body: &str) -> Vec<u8> {
        format!("{HEADER}{body}").into_bytes()
    }

    #[test]
    fn reads_raw_columns_with_their_lines() {
        let body = "chr1\t10\trs1\tA\tT\t50\tPASS\tDP=3\tGT\t0/1\n\
                    chr1\t20\t.\tAC\tA,ACC\t.\t.\t.\tGT\t1/2\n\
                    \n\
                    chr2\t30\tx;y\tG\t<DEL>\t.\tq10\tSVTYPE=DEL\tGT\t./.\n\
                    chr2\t40\t.\tT\t.\t.\t.\t.\tGT\t0/0";
        let read = read_bytes(&with_header(body)).expect("read");
        assert_eq!(
            rows(&read.records),
            vec![
                row(6, "chr1", 10, "rs1", "A", "T"),
                row(7, "chr1", 20, ".", "AC", "A,ACC"),
                row(9, "chr2", 30, "x;y", "G", "<DEL>"),
                row(10, "chr2", 40, ".", "T", "."),
            ]
        );
        assert_eq!(read.lines, 10);
        assert_eq!(read.compression, Compression::Plain);
    }

    #[test]
    fn crlf_a_byte_order_mark_and_no_samples() {
        let text = "\u{feff}##fileformat=VCFv4.2\r\n\
                    #CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\r\n\
                    \r\n\
                    1\t5\t.\tN\tA\t.\t.\t.\r\n";
        let read = read_bytes(text.as_bytes()).expect("read");
        assert_eq!(rows(&read.records), vec![row(4, "1", 5, ".", "N", "A")]);
    }

    #[test]
    fn a_header_alone_has_no_records() {
        let read = read_bytes(HEADER.as_bytes()).expect("read");
        assert!(read.records.is_empty());
        assert_eq!(read.lines, 5);
    }

    #[test]
    fn gzip_and_bgzf_read_like_plain() {
        let body = numbered(3000, |i| {
            format!(
                "chr{}\t{i}\tid{i}\tA\tC,<INS>\t.\tPASS\tDP={i}\tGT\t0|1\n",
                i % 3
            )
        });
        let text = with_header(&body);
        let plain = read_bytes(&text).expect("plain");
        assert_eq!(plain.records.len(), 3000);
        let members: Vec<u8> = text
            .chunks(10_000)
            .flat_map(gzip_member)
            .collect::<Vec<u8>>();
        let (mut blocks, _) = bgzf(&text, &[4000, 0, 17]);
        blocks.extend_from_slice(&BGZF_EOF);
        for (bytes, kind) in [(members, Compression::Gzip), (blocks, Compression::Bgzf)] {
            for threads in [1, 3] {
                let mut f = tempfile::NamedTempFile::new().expect("tmp");
                f.write_all(&bytes).expect("write");
                let read = read_vcf(f.path(), threads, None).expect("read");
                assert_eq!(read.compression, kind);
                assert_eq!(read.records, plain.records);
                assert!(!read.source.bgzf_eof_missing);
            }
        }
    }

    #[test]
    fn a_truncated_or_corrupt_stream_is_a_vcf_error() {
        let body = numbered(5000, |i| format!("chr1\t{i}\t.\tA\tG\t.\t.\t.\tGT\t0/1\n"));
        let text = with_header(&body);
        let gz = gzip_member(&text);
        let (msg_line, _, msg) = vcf_error(&gz[..gz.len() / 2]);
        assert!(msg.contains("gzip stream is truncated"), "{msg}");
        assert!(msg_line > 5, "{msg_line}");
        let (mut blocks, starts) = bgzf(&text, &[2000]);
        blocks.extend_from_slice(&BGZF_EOF);
        let (cut, _) = starts[5];
        let (_, _, msg) = vcf_error(&blocks[..cut + 50]);
        assert!(msg.contains("bgzf stream is truncated"), "{msg}");
        let mut bad = gz.clone();
        let at = bad.len() - 6;
        bad[at] ^= 0xff; // the CRC
        let (_, _, msg) = vcf_error(&bad);
        assert!(msg.contains("corrupt gzip stream"), "{msg}");
    }

    #[test]
    fn bad_files_name_the_line() {
        let cases: [(&[u8], u64, &str); 9] = [
            (b"", 1, "empty file"),
            (b"\xef\xbb\xbf", 1, "empty file"),
            (b"\n\r\n", 3, "empty file"),
            (b"\x00\x01binary\xff", 1, "not a VCF file"),
            (b"chr1\t1\t.\tA\tT\t.\t.\t.\n", 1, "not a VCF file"),
            (
                b"##fileformat=VCFv4.2\n##contig=<ID=1>\n",
                3,
                "missing the #CHROM",
            ),
            (
                b"##fileformat=VCFv4.2\n1\t1\t.\tA\tT\t.\t.\t.\n",
                2,
                "missing the #CHROM",
            ),
            (
                b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\n",
                2,
                "bad #CHROM header line",
            ),
            (
                b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n",
                1,
                "##fileformat",
            ),
        ];
        for (bytes, line, what) in cases {
            let (at, record, msg) = vcf_error(bytes);
            assert_eq!((at, record), (line, None), "{msg}");
            assert!(msg.contains(what), "{msg}");
        }
        let (at, _, msg) = vcf_error(b"##fileformat=VCFv4.2\n##INFO=<ID=DP\n#CHROM\n");
        assert_eq!(at, 2);
        assert!(msg.starts_with("bad header line: "), "{msg}");
    }

    #[test]
    fn bad_records_name_line_chrom_and_column() {
        let cases: [(&[u8], &str); 13] = [
            (
                b"chr1\t1\t.\tA\n",
                "4 columns, but a VCF data line has at least 8",
            ),
            (
                b"chr1 1 . A T . . .\n",
                "separated by spaces instead of tabs",
            ),
            (
                b"chr1\tx\t.\tA\tT\t.\t.\t.\tGT\t0\n",
                "POS 'x' is not a number",
            ),
            (b"chr1\t0\t.\tA\tT\t.\t.\t.\tGT\t0\n", "POS is 0"),
            (b"chr1\t-3\t.\tA\tT\t.\t.\t.\tGT\t0\n", "POS -3 is negative"),
            (
                b"chr1\t1.5\t.\tA\tT\t.\t.\t.\tGT\t0\n",
                "POS '1.5' is not a number",
            ),
            (
                b"chr1\t9223372036854775808\t.\tA\tT\t.\t.\t.\tGT\t0\n",
                "POS 9223372036854775808 is too large",
            ),
            (
                b"chr1\t\t.\tA\tT\t.\t.\t.\tGT\t0\n",
                "column 2 (POS) is empty",
            ),
            (
                b"chr1\t1\t.\t\tT\t.\t.\t.\tGT\t0\n",
                "column 4 (REF) is empty",
            ),
            (
                b"chr1\t1\t.\tA\tT\t.\t.\t.\tGT\t0\t\n",
                "column 11 (sample) is empty",
            ),
            (
                b"chr1\t1\t.\tA\tT\t.\t.\t.\tGT\n",
                "a FORMAT column with no sample",
            ),
            (b"chr1\t1\t.\tA\tT\t.\t.\t\xff\tGT\t0\n", "not UTF-8"),
            (b"##INFO=<ID=X>\n", "a header line after the #CHROM line"),
        ];
        for (bad, what) in cases {
            let good = "chr1\t1\t.\tA\tT\t.\t.\t.\tGT\t0\n";
            let mut text = with_header(good);
            text.extend_from_slice(bad);
            text.extend_from_slice(good.as_bytes());
            let (line, record, msg) = vcf_error(&text);
            assert_eq!(line, 7, "{msg}");
            assert!(msg.contains(what), "{bad:?}: {msg}");
            let expected = if bad.starts_with(b"chr1\t") {
                Some("chr1")
            } else {
                None
            };
            assert_eq!(record.as_deref(), expected, "{bad:?}");
        }
        let err = read_bytes(&with_header("chr1\tx\t.\tA\tT\t.\t.\t.\tGT\t0\n")).expect_err("x");
        assert!(
            err.to_string()
                .ends_with(": line 6: POS 'x' is not a number (CHROM 'chr1')"),
            "{err}"
        );
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let pos = "y".repeat(500);
        let bad = format!("chr1\t{pos}\t.\tA\tT\t.\t.\t.\tGT\t0\n");
        let (_, _, msg) = vcf_error(&with_header(&bad));
        assert!(msg.len() < 100, "{msg}");
        assert!(msg.contains("yyy...'"), "{msg}");
    }

    #[test]
    fn a_directory_is_an_io_error() {
        let dir = tempfile::tempdir().expect("dir");
        match read_vcf(dir.path(), 1, None) {
            Err(Error::Io { source, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::IsADirectory);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn progress_is_reported_at_the_end_and_can_stop_the_read() {
        let text = with_header("chr1\t1\t.\tA\tT\t.\t.\t.\tGT\t0\n");
        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        f.write_all(&text).expect("write");
        let mut seen = Vec::new();
        let mut cb = |done, total| {
            seen.push((done, total));
            Ok(())
        };
        read_vcf(f.path(), 1, Some(&mut cb)).expect("read");
        let n = text.len() as u64;
        assert_eq!(seen.last(), Some(&(n, n)));
        let mut stop = |_, _| Err(Error::Cancelled);
        assert!(matches!(
            read_vcf(f.path(), 1, Some(&mut stop)),
            Err(Error::Cancelled)
        ));
    }

    /// Random bytes, and a valid VCF with random bytes changed, cut or repeated: an
    /// error or records, never a panic.
    #[test]
    fn hostile_bytes_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let good = with_header(
            "chr1\t10\trs1\tA\tT,<DEL>\t50\tPASS\tDP=3\tGT\t0/1\n\
             chr2\t20\t.\tAC\t.\t.\t.\t.\tGT\t1|0\n",
        );
        let alphabet = b"#\t\n\r .,<>=0123456789ACGTN-\x00\xff\xef\xbb\xbfchrom";
        for case in 0..400 {
            let bytes: Vec<u8> = if case % 4 == 0 {
                let n = rng.below(300) as usize;
                (0..n)
                    .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                    .collect()
            } else {
                let mut b = good.clone();
                for _ in 0..=rng.below(4) {
                    let at = rng.below(b.len() as u64) as usize;
                    match rng.below(3) {
                        0 => b[at] = alphabet[rng.below(alphabet.len() as u64) as usize],
                        1 => b.truncate(at),
                        _ => b.insert(at, b'\t'),
                    }
                    if b.is_empty() {
                        break;
                    }
                }
                b
            };
            match read_bytes(&bytes) {
                Ok(_) | Err(Error::Vcf { .. }) => {}
                Err(other) => panic!("{bytes:?}: {other}"),
            }
        }
    }
}
