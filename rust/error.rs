//! The crate's one error type. Every variant carries enough context (file, line,
//! record) for a user to find the problem; the Python layer maps each variant to a
//! typed exception.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Errors raised by the core.
#[derive(Debug)]
pub enum Error {
    /// Opening, reading or writing a file failed.
    Io { path: PathBuf, source: io::Error },
    /// The input is not valid FASTA.
    Format {
        path: PathBuf,
        line: u64,
        record: Option<String>,
        msg: String,
    },
    /// A gzip or BGZF stream is corrupt or truncated.
    Compression { path: PathBuf, msg: String },
    /// The input is not valid VCF, or its gzip / BGZF stream is corrupt or truncated
    /// (`line`: the line being read; `record`: the CHROM of the bad record, when known).
    Vcf {
        path: PathBuf,
        line: u64,
        record: Option<String>,
        msg: String,
    },
    /// A vocabulary file or specification is not usable.
    Vocab {
        path: Option<PathBuf>,
        line: Option<u64>,
        msg: String,
    },
    /// A record name that the genome does not contain.
    RecordNotFound(String),
    /// A parameter out of range or inconsistent with the data.
    InvalidArgument(String),
    /// The operation was stopped by its progress callback.
    Cancelled,
    /// An output too large to allocate (what was asked for, in words).
    OutOfMemory(String),
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// A vector of `n` copies of `value`, or [`Error::OutOfMemory`] naming `what` when the
/// allocation fails (instead of aborting the process).
pub fn try_filled<T: Clone>(n: usize, value: T, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| Error::OutOfMemory(format!("{what} ({n} elements)")))?;
    v.resize(n, value);
    Ok(v)
}

impl Error {
    /// Wrap an I/O error with the path it concerns.
    #[must_use]
    pub fn io(path: &Path, source: io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A FASTA format error at a line of a record.
    pub fn format(path: &Path, line: u64, record: Option<&str>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.to_path_buf(),
            line,
            record: record.map(str::to_owned),
            msg: msg.into(),
        }
    }

    /// A VCF error at a line, in the record on chromosome `record` when known.
    pub fn vcf(path: &Path, line: u64, record: Option<&str>, msg: impl Into<String>) -> Self {
        Error::Vcf {
            path: path.to_path_buf(),
            line,
            record: record.map(str::to_owned),
            msg: msg.into(),
        }
    }

    /// A vocabulary error, optionally tied to a file line.
    pub fn vocab(path: Option<&Path>, line: Option<u64>, msg: impl Into<String>) -> Self {
        Error::Vocab {
            path: path.map(Path::to_path_buf),
            line,
            msg: msg.into(),
        }
    }

    /// An invalid argument.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Format {
                path,
                line,
                record,
                msg,
            } => {
                write!(f, "{}:{line}: ", path.display())?;
                if let Some(r) = record {
                    write!(f, "record '{r}': ")?;
                }
                f.write_str(msg)
            }
            Error::Compression { path, msg } => write!(f, "{}: {msg}", path.display()),
            Error::Vcf {
                path,
                line,
                record,
                msg,
            } => {
                write!(f, "{}: line {line}: {msg}", path.display())?;
                match record {
                    Some(r) => write!(f, " (CHROM '{r}')"),
                    None => Ok(()),
                }
            }
            Error::Vocab { path, line, msg } => {
                if let Some(p) = path {
                    write!(f, "{}", p.display())?;
                    if let Some(l) = line {
                        write!(f, ":{l}")?;
                    }
                    f.write_str(": ")?;
                }
                f.write_str(msg)
            }
            Error::RecordNotFound(name) => write!(f, "no record named '{name}'"),
            Error::InvalidArgument(msg) => f.write_str(msg),
            Error::Cancelled => f.write_str("cancelled"),
            Error::OutOfMemory(what) => write!(f, "cannot allocate {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
