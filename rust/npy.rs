//! Minimal `.npy` (format 1.0) writing: 1-D arrays streamed to disk, with the shape
//! patched into a fixed-size header once the length is known. Files are written under
//! a temporary name and renamed into place, so no half-written file ever has a final name.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Total header size: room for any shape, a multiple of 64 as NumPy recommends.
const HEADER_LEN: usize = 128;

fn header(descr: &str, shape: &[u64]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(b"\x93NUMPY\x01\x00");
    let body_len = (HEADER_LEN - 10) as u16;
    h.extend_from_slice(&body_len.to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(HEADER_LEN - 1, b' ');
    h.push(b'\n');
    h
}

/// Temporary sibling name used while a file is being written.
#[must_use]
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Streams elements of one dtype into a `.npy` file.
pub struct NpyWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    descr: &'static str,
    itemsize: usize,
    len: u64,
}

impl NpyWriter {
    /// Start writing `path` (a temporary file until [`NpyWriter::finish`]).
    pub fn create(path: &Path, descr: &'static str, itemsize: usize) -> Result<Self> {
        let tmp = temp_path(path);
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&header(descr, &[0]))
            .map_err(|e| Error::io(&tmp, e))?;
        Ok(NpyWriter {
            path: path.to_path_buf(),
            tmp,
            out: Some(out),
            descr,
            itemsize,
            len: 0,
        })
    }

    /// Append raw little-endian element bytes.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        debug_assert_eq!(bytes.len() % self.itemsize, 0);
        let out = self.out.as_mut().expect("writer open");
        out.write_all(bytes).map_err(|e| Error::io(&self.tmp, e))?;
        self.len += (bytes.len() / self.itemsize) as u64;
        Ok(())
    }

    /// Elements written so far.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Patch the header, flush and rename into place. The data is not synced to disk
    /// here: one sync of the whole output before its manifest is written costs far less
    /// than one per file (thousands of records). On error (a full disk) the temporary
    /// file is removed.
    pub fn finish(mut self) -> Result<PathBuf> {
        let out = self.out.take().expect("writer open");
        let tmp = self.tmp.clone();
        let io = |e| Error::io(&tmp, e);
        let written = (|| {
            let mut file = out.into_inner().map_err(|e| io(e.into_error()))?;
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            file.write_all(&header(self.descr, &[self.len]))
                .map_err(io)?;
            file.flush().map_err(io)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        if let Err(e) = std::fs::rename(&tmp, &self.path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io(&self.path, e));
        }
        Ok(self.path.clone())
    }
}

impl Drop for NpyWriter {
    fn drop(&mut self) {
        if self.out.is_some() {
            self.out = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Write a whole array of raw element bytes with the given shape, atomically.
pub fn write_array(path: &Path, descr: &str, shape: &[u64], bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let io = |e| Error::io(&tmp, e);
    let result = (|| {
        let mut f = BufWriter::new(File::create(&tmp).map_err(io)?);
        f.write_all(&header(descr, shape)).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        let file = f.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_fixed_size() {
        assert_eq!(header("<u2", &[0]).len(), HEADER_LEN);
        assert_eq!(header("<u2", &[u64::MAX, 515]).len(), HEADER_LEN);
        assert!(String::from_utf8_lossy(&header("<u2", &[7])).contains("'shape': (7,)"));
    }

    #[test]
    fn streamed_file_has_final_shape() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("x.npy");
        let mut w = NpyWriter::create(&p, "<u2", 2).expect("create");
        w.write_bytes(&[1, 0, 2, 0, 3, 0]).expect("write");
        w.finish().expect("finish");
        let bytes = std::fs::read(&p).expect("read");
        assert_eq!(bytes.len(), HEADER_LEN + 6);
        assert!(String::from_utf8_lossy(&bytes[..HEADER_LEN]).contains("(3,)"));
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }
}
