//! The one mapping from core errors to Python exceptions. The exception classes are
//! defined in `dnakmer/exceptions.py`, so they can inherit from both `DnakmerError` and
//! the matching built-in (`ValueError`, `KeyError`).

use pyo3::exceptions::{
    PyFileNotFoundError, PyIsADirectoryError, PyKeyboardInterrupt, PyMemoryError, PyOSError,
    PyPermissionError, PyValueError,
};
use pyo3::PyErr;

use crate::error::Error;

pyo3::import_exception!(dnakmer.exceptions, FastaFormatError);
pyo3::import_exception!(dnakmer.exceptions, CompressionError);
pyo3::import_exception!(dnakmer.exceptions, VcfFormatError);
pyo3::import_exception!(dnakmer.exceptions, VocabError);
pyo3::import_exception!(dnakmer.exceptions, RecordNotFoundError);

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        let message = e.to_string();
        match e {
            Error::Io { path, source } => {
                let errno = source.raw_os_error().unwrap_or(0);
                let strerror = match source.raw_os_error() {
                    Some(_) => std::io::Error::from_raw_os_error(errno)
                        .to_string()
                        .split(" (os error")
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                    None => source.to_string(),
                };
                let args = (errno, strerror, path.to_string_lossy().into_owned());
                match source.kind() {
                    std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(args),
                    std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(args),
                    std::io::ErrorKind::IsADirectory => PyIsADirectoryError::new_err(args),
                    _ => PyOSError::new_err(args),
                }
            }
            Error::Format {
                path, line, record, ..
            } => FastaFormatError::new_err((
                message,
                path.to_string_lossy().into_owned(),
                line,
                record,
            )),
            Error::Compression { path, .. } => CompressionError::new_err((
                message,
                path.to_string_lossy().into_owned(),
                None::<u64>,
                None::<String>,
            )),
            Error::Vcf {
                path, line, record, ..
            } => VcfFormatError::new_err((
                message,
                path.to_string_lossy().into_owned(),
                line,
                record,
            )),
            Error::Vocab { path, line, .. } => VocabError::new_err((
                message,
                path.map(|p| p.to_string_lossy().into_owned()),
                line,
                None::<String>,
            )),
            Error::RecordNotFound(name) => {
                RecordNotFoundError::new_err((message, None::<String>, None::<u64>, name))
            }
            Error::InvalidArgument(_) => PyValueError::new_err(message),
            Error::Cancelled => PyKeyboardInterrupt::new_err("cancelled"),
            Error::OutOfMemory(_) => PyMemoryError::new_err(message),
        }
    }
}
