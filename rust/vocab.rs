//! Vocabularies: DNABERT's default layout, and any `vocab.txt` that holds the five
//! special tokens and every k-mer of one length exactly once.
//!
//! Token ids are line numbers, as `transformers.BertTokenizer` assigns them.

use std::fmt::Write as _;
use std::path::Path;

use crate::alphabet::BASES;
use crate::error::{Error, Result};

/// Largest supported k (4^8 = 65,536 k-mers).
pub const MAX_K: usize = 8;
/// The special tokens, in DNABERT's order.
pub const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// Ids of the special tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialIds {
    pub pad: u32,
    pub unk: u32,
    pub cls: u32,
    pub sep: u32,
    pub mask: u32,
}

/// A k-mer vocabulary.
#[derive(Debug, Clone)]
pub struct Vocab {
    k: usize,
    /// Token text by id.
    tokens: Vec<String>,
    /// Id of each k-mer by its canonical index Σ code·4^(k-1-i) (A=0, T=1, C=2, G=3).
    kmer_ids: Vec<u32>,
    specials: SpecialIds,
}

/// Check that k is supported.
pub fn check_k(k: usize) -> Result<()> {
    if (1..=MAX_K).contains(&k) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "k must be between 1 and {MAX_K}, got {k}"
        )))
    }
}

/// Text of the k-mer with canonical index `index`.
#[must_use]
pub fn kmer_text(index: usize, k: usize) -> String {
    (0..k)
        .map(|i| BASES[(index >> (2 * (k - 1 - i))) & 3] as char)
        .collect()
}

/// Canonical index of an uppercase ACGT k-mer, or `None` for anything else.
#[must_use]
pub fn kmer_index(text: &str) -> Option<usize> {
    text.bytes().try_fold(0usize, |acc, b| {
        let code = match b {
            b'A' => 0,
            b'T' => 1,
            b'C' => 2,
            b'G' => 3,
            _ => return None,
        };
        Some(acc * 4 + code)
    })
}

/// Validate one vocabulary line: `Some(len)` for a k-mer, `None` for a `[SPECIAL]` token.
fn check_token<'a>(
    tok: &'a str,
    line: Option<u64>,
    path: Option<&Path>,
    seen: &mut std::collections::HashMap<&'a str, usize>,
    i: usize,
) -> Result<Option<usize>> {
    if tok.is_empty() {
        return Err(Error::vocab(path, line, "empty token"));
    }
    if tok.trim() != tok {
        return Err(Error::vocab(
            path,
            line,
            format!("token {tok:?} has surrounding whitespace (CRLF line endings?)"),
        ));
    }
    if let Some(first) = seen.insert(tok, i) {
        return Err(Error::vocab(
            path,
            line,
            format!("duplicate token '{tok}' (first on line {})", first + 1),
        ));
    }
    if tok.starts_with('[') && tok.ends_with(']') {
        return Ok(None);
    }
    if kmer_index(tok).is_none() {
        return Err(Error::vocab(
            path,
            line,
            format!("token '{tok}' is neither a [SPECIAL] token nor an uppercase ACGT k-mer"),
        ));
    }
    Ok(Some(tok.len()))
}

impl Vocab {
    /// DNABERT's vocabulary: the five special tokens, then all k-mers in
    /// `itertools.product("ATCG", repeat=k)` order.
    pub fn dnabert(k: usize) -> Result<Self> {
        check_k(k)?;
        let n = 1usize << (2 * k);
        let mut tokens: Vec<String> = SPECIAL_TOKENS.iter().map(|s| (*s).to_owned()).collect();
        tokens.extend((0..n).map(|i| kmer_text(i, k)));
        let kmer_ids = (0..n as u32).map(|i| i + 5).collect();
        Ok(Vocab {
            k,
            tokens,
            kmer_ids,
            specials: SpecialIds {
                pad: 0,
                unk: 1,
                cls: 2,
                sep: 3,
                mask: 4,
            },
        })
    }

    /// Read a `vocab.txt` (one token per line, id = line index).
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let line = memchr::memchr_iter(b'\n', &bytes[..e.valid_up_to()]).count() as u64 + 1;
            Error::vocab(Some(path), Some(line), format!("not valid UTF-8 ({e})"))
        })?;
        Self::from_lines(text, Some(path))
    }

    /// Parse vocabulary text; `path` is only used in error messages.
    pub fn from_lines(text: &str, path: Option<&Path>) -> Result<Self> {
        // BertTokenizer strips only the trailing newline of each line.
        let body = text.strip_suffix('\n').unwrap_or(text);
        if body.is_empty() {
            return Err(Error::vocab(path, None, "vocabulary is empty"));
        }
        let tokens: Vec<String> = body.split('\n').map(str::to_owned).collect();
        let mut k = None;
        let mut seen = std::collections::HashMap::with_capacity(tokens.len());
        for (i, tok) in tokens.iter().enumerate() {
            let line = Some(i as u64 + 1);
            let Some(len) = check_token(tok, line, path, &mut seen, i)? else {
                continue;
            };
            match k {
                None => k = Some(len),
                Some(k0) if k0 != len => {
                    return Err(Error::vocab(
                        path,
                        line,
                        format!(
                            "k-mer '{tok}' has length {} but earlier k-mers have length {k0}",
                            tok.len()
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        let Some(k) = k else {
            return Err(Error::vocab(path, None, "vocabulary holds no k-mers"));
        };
        if k > MAX_K {
            return Err(Error::vocab(
                path,
                None,
                format!("k = {k} exceeds the maximum of {MAX_K}"),
            ));
        }
        let special_id = |name: &str| -> Result<u32> {
            seen.get(name)
                .map(|&i| i as u32)
                .ok_or_else(|| Error::vocab(path, None, format!("special token {name} is missing")))
        };
        let specials = SpecialIds {
            pad: special_id("[PAD]")?,
            unk: special_id("[UNK]")?,
            cls: special_id("[CLS]")?,
            sep: special_id("[SEP]")?,
            mask: special_id("[MASK]")?,
        };
        let n = 1usize << (2 * k);
        let mut kmer_ids = vec![u32::MAX; n];
        for (i, tok) in tokens.iter().enumerate() {
            if let Some(idx) = kmer_index(tok) {
                kmer_ids[idx] = i as u32;
            }
        }
        let missing: Vec<String> = kmer_ids
            .iter()
            .enumerate()
            .filter(|(_, &id)| id == u32::MAX)
            .map(|(i, _)| kmer_text(i, k))
            .collect();
        if !missing.is_empty() {
            let mut msg = format!("{} of the {n} {k}-mers are missing, e.g.", missing.len());
            for m in missing.iter().take(5) {
                let _ = write!(msg, " {m}");
            }
            return Err(Error::vocab(path, None, msg));
        }
        Ok(Vocab {
            k,
            tokens,
            kmer_ids,
            specials,
        })
    }

    /// k-mer length.
    #[must_use]
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of tokens (largest id + 1).
    #[must_use]
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Never true: a vocabulary holds at least the special tokens and the k-mers.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Token text by id.
    #[must_use]
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// Id of each k-mer by canonical index.
    #[must_use]
    pub fn kmer_ids(&self) -> &[u32] {
        &self.kmer_ids
    }

    /// Ids of the special tokens.
    #[must_use]
    pub fn specials(&self) -> SpecialIds {
        self.specials
    }

    /// Canonical k-mer index of each token id (`-1` for non-k-mer tokens).
    #[must_use]
    pub fn id_to_kmer_index(&self) -> Vec<i32> {
        let mut out = vec![-1i32; self.tokens.len()];
        for (idx, &id) in self.kmer_ids.iter().enumerate() {
            out[id as usize] = i32::try_from(idx).expect("at most 4^8 k-mers");
        }
        out
    }

    /// The vocabulary as `vocab.txt` text.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut s = self.tokens.join("\n");
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnabert_layout() {
        let v = Vocab::dnabert(6).expect("k=6");
        assert_eq!(v.len(), 4101);
        assert_eq!(v.tokens()[5], "AAAAAA");
        assert_eq!(v.tokens()[6], "AAAAAT");
        assert_eq!(v.tokens()[4100], "GGGGGG");
        assert_eq!(kmer_index("AAAAAT"), Some(1));
        assert_eq!(kmer_text(4095, 6), "GGGGGG");
    }

    #[test]
    fn roundtrip_and_errors() {
        let v = Vocab::dnabert(2).expect("k=2");
        let again = Vocab::from_lines(&v.to_text(), None).expect("parse");
        assert_eq!(again.kmer_ids(), v.kmer_ids());
        let missing = v.to_text().replace("GG\n", "");
        assert!(Vocab::from_lines(&missing, None).is_err());
        let dup = format!("{}AA\n", v.to_text());
        assert!(Vocab::from_lines(&dup, None)
            .expect_err("dup")
            .to_string()
            .contains("duplicate"));
        assert!(check_k(0).is_err() && check_k(9).is_err());
    }

    #[test]
    fn invalid_utf8_error_names_the_line() {
        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        std::io::Write::write_all(&mut f, b"[PAD]\n[UNK]\n[M\xc4SK]\n").expect("write");
        let err = Vocab::from_file(f.path()).expect_err("not UTF-8");
        assert!(matches!(err, Error::Vocab { line: Some(3), .. }), "{err}");
    }
}
