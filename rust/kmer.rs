//! Rolling k-mer token ids for any k (1..=8) and stride, with `[UNK]` for every k-mer
//! that touches a base other than A/C/G/T. Lowercase is read as uppercase.
//!
//! Token `i` covers bases `[i*stride, i*stride + k)`; a sequence of `L` bases gives
//! `(L - k) / stride + 1` tokens when `L >= k` (a trailing partial k-mer is dropped).

use std::sync::Arc;

use crate::alphabet::{CLASS, INVALID, NON_ACGT, NOT_BASE_MASK, NOT_SEQ_MASK, SKIP};
use crate::error::{try_filled, Error, Result};
use crate::fasta::BadByte;
use crate::vocab::Vocab;

mod fast;
mod lines;
#[cfg(target_arch = "x86_64")]
mod x86;
pub use lines::{LineJoiner, Taken};

/// Unsigned integer type that token ids are written in.
pub trait TokenId: Copy + Default + Send + Sync + 'static {
    /// Convert an id known to fit.
    fn from_id(v: u32) -> Self;
    /// Widen back to `u32`.
    fn to_id(self) -> u32;
}

macro_rules! token_id {
    ($($t:ty),*) => {$(
        impl TokenId for $t {
            #[inline(always)]
            fn from_id(v: u32) -> Self { v as $t }
            #[inline(always)]
            fn to_id(self) -> u32 { u32::from(self) }
        }
    )*};
}
token_id!(u8, u16, u32);

/// Smallest unsigned width that holds every id of a vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdWidth {
    U8,
    U16,
    U32,
}

impl IdWidth {
    /// Width for a vocabulary of `n` tokens.
    #[must_use]
    pub fn for_vocab_size(n: usize) -> Self {
        if n <= 1 << 8 {
            IdWidth::U8
        } else if n <= 1 << 16 {
            IdWidth::U16
        } else {
            IdWidth::U32
        }
    }

    /// NumPy dtype name.
    #[must_use]
    pub fn numpy_name(self) -> &'static str {
        match self {
            IdWidth::U8 => "uint8",
            IdWidth::U16 => "uint16",
            IdWidth::U32 => "uint32",
        }
    }

    /// NumPy array-protocol type string (little-endian).
    #[must_use]
    pub fn descr(self) -> &'static str {
        match self {
            IdWidth::U8 => "|u1",
            IdWidth::U16 => "<u2",
            IdWidth::U32 => "<u4",
        }
    }
}

const fn build_code_class() -> [u8; 256] {
    let mut t = [INVALID; 256];
    t[0] = 0;
    t[1] = 1;
    t[2] = 2;
    t[3] = 3;
    t[4] = NON_ACGT;
    t
}

/// Class table for inputs already in codes (0–3 = A/T/C/G, 4 = other).
pub static CODE_CLASS: [u8; 256] = build_code_class();

/// Streaming state of the rolling k-mer encoder (one record at a time).
#[derive(Debug, Clone)]
pub struct Rolling {
    k: u64,
    mask: u32,
    stride: u64,
    id: u32,
    run: u64,
    pos: u64,
    next_emit: u64,
}

impl Rolling {
    fn new(k: usize, stride: usize) -> Self {
        Rolling {
            k: k as u64,
            mask: ((1u64 << (2 * k)) - 1) as u32,
            stride: stride as u64,
            id: 0,
            run: 0,
            pos: 0,
            next_emit: k as u64,
        }
    }

    /// Bases consumed so far.
    #[must_use]
    pub fn bases(&self) -> u64 {
        self.pos
    }

    /// Encode a chunk; `classes` is [`CLASS`] for text or [`CODE_CLASS`] for codes.
    #[inline]
    pub fn push<T: TokenId>(
        &mut self,
        bytes: &[u8],
        classes: &[u8; 256],
        table: &[u32],
        unk: u32,
        out: &mut Vec<T>,
    ) -> std::result::Result<(), BadByte> {
        out.reserve(bytes.len() / self.stride as usize + 1);
        let (k, mask, stride) = (self.k, self.mask, self.stride);
        let (mut id, mut run, mut pos, mut next_emit) =
            (self.id, self.run, self.pos, self.next_emit);
        let mut result = Ok(());
        for (offset, &byte) in bytes.iter().enumerate() {
            let c = classes[byte as usize];
            if c & NOT_BASE_MASK == 0 {
                id = ((id << 2) | u32::from(c & 3)) & mask;
                run = (run + 1).min(k);
            } else if c & NOT_SEQ_MASK == 0 {
                run = 0;
            } else if c == SKIP {
                continue;
            } else {
                result = Err(BadByte { offset, byte });
                break;
            }
            pos += 1;
            if pos == next_emit {
                next_emit += stride;
                out.push(T::from_id(if run == k { table[id as usize] } else { unk }));
            }
        }
        self.id = id;
        self.run = run;
        self.pos = pos;
        self.next_emit = next_emit;
        result
    }
}

/// Padding mode of [`Tokenizer::encode_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Pad every row to the longest row of the batch.
    Longest,
    /// Pad every row to `max_length`.
    MaxLength,
}

/// A padded batch: row-major ids and attention mask of shape `(rows, cols)`.
#[derive(Debug, Clone)]
pub struct Batch<T> {
    pub ids: Vec<T>,
    pub mask: Vec<u8>,
    pub rows: usize,
    pub cols: usize,
}

/// A k-mer tokenizer: vocabulary plus stride.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    vocab: Arc<Vocab>,
    stride: usize,
    /// `Some(offset)` when every k-mer id is its index plus `offset` (DNABERT's layout).
    id_offset: Option<u32>,
}

impl Tokenizer {
    /// Tokenizer over `vocab` with the given stride (1 = overlapping, k = disjoint).
    pub fn new(vocab: Vocab, stride: usize) -> Result<Self> {
        if stride == 0 {
            return Err(Error::invalid("stride must be at least 1"));
        }
        let ids = vocab.kmer_ids();
        let id_offset = ids
            .iter()
            .zip(0u32..)
            .all(|(&id, i)| id == ids[0] + i)
            .then(|| ids[0]);
        Ok(Tokenizer {
            vocab: Arc::new(vocab),
            stride,
            id_offset,
        })
    }

    /// DNABERT's tokenizer for `k` (default vocabulary).
    pub fn dnabert(k: usize, stride: usize) -> Result<Self> {
        Self::new(Vocab::dnabert(k)?, stride)
    }

    /// k-mer length.
    #[must_use]
    pub fn k(&self) -> usize {
        self.vocab.k()
    }

    /// Stride between token starts.
    #[must_use]
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The vocabulary.
    #[must_use]
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// Id width of this vocabulary.
    #[must_use]
    pub fn width(&self) -> IdWidth {
        IdWidth::for_vocab_size(self.vocab.len())
    }

    /// Number of tokens a sequence of `bases` bases gives.
    #[must_use]
    pub fn n_tokens(&self, bases: usize) -> usize {
        let k = self.k();
        if bases < k {
            0
        } else {
            (bases - k) / self.stride + 1
        }
    }

    /// Bases spanned by `n` consecutive tokens.
    #[must_use]
    pub fn span_of(&self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (n - 1) * self.stride + self.k()
        }
    }

    /// A fresh streaming encoder.
    #[must_use]
    pub fn rolling(&self) -> Rolling {
        Rolling::new(self.k(), self.stride)
    }

    /// Encode a chunk with a streaming encoder (text input).
    #[inline]
    pub fn push_text<T: TokenId>(
        &self,
        state: &mut Rolling,
        bytes: &[u8],
        out: &mut Vec<T>,
    ) -> std::result::Result<(), BadByte> {
        self.push_text_counting(state, bytes, out).map(|_| ())
    }

    /// [`Tokenizer::push_text`] that also returns how many `[UNK]` ids it appended.
    #[inline]
    pub fn push_text_counting<T: TokenId>(
        &self,
        state: &mut Rolling,
        bytes: &[u8],
        out: &mut Vec<T>,
    ) -> std::result::Result<u64, BadByte> {
        state.push_counting::<fast::Text, T>(bytes, self.lookup(&CLASS), out)
    }

    fn lookup<'a>(&'a self, classes: &'a [u8; 256]) -> fast::Lookup<'a> {
        let table = self.vocab.kmer_ids();
        fast::Lookup {
            classes,
            table,
            map: self
                .id_offset
                .map_or(fast::IdMap::Table(table), fast::IdMap::Offset),
            unk: self.vocab.specials().unk,
        }
    }

    /// Encode a whole text sequence (no special tokens) into `out`.
    pub fn encode_into<T: TokenId>(
        &self,
        seq: &[u8],
        out: &mut Vec<T>,
    ) -> std::result::Result<(), BadByte> {
        let mut state = self.rolling();
        self.push_text(&mut state, seq, out)
    }

    /// Encode a sequence given as codes (0–3 = A/T/C/G, 4 = other) into `out`.
    pub fn encode_codes_into<T: TokenId>(&self, codes: &[u8], out: &mut Vec<T>) -> Result<()> {
        let mut state = self.rolling();
        state
            .push_counting::<fast::Codes, T>(codes, self.lookup(&CODE_CLASS), out)
            .map(|_| ())
            .map_err(|b| Error::invalid(format!("invalid base code {} at {}", b.byte, b.offset)))
    }

    /// Encode a whole text sequence, with a message naming the bad character.
    pub fn encode<T: TokenId>(&self, seq: &[u8]) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(self.n_tokens(seq.len()));
        self.encode_into(seq, &mut out)
            .map_err(|b| bad_char_error(b, None))?;
        Ok(out)
    }

    /// Encode at most `limit` tokens of `seq`, skipping the work past them.
    fn encode_limited<T: TokenId>(
        &self,
        seq: &[u8],
        limit: Option<usize>,
    ) -> std::result::Result<Vec<T>, BadByte> {
        let mut out = Vec::new();
        if let Some(limit) = limit {
            let prefix = self.span_of(limit).min(seq.len());
            self.encode_into(&seq[..prefix], &mut out)?;
            if out.len() >= limit || prefix == seq.len() {
                out.truncate(limit);
                return Ok(out);
            }
            out.clear();
        }
        self.encode_into(seq, &mut out)?;
        if let Some(limit) = limit {
            out.truncate(limit);
        }
        Ok(out)
    }

    /// Encode many sequences (optionally on several threads), without padding.
    pub fn encode_many<T: TokenId>(
        &self,
        seqs: &[&[u8]],
        limit: Option<usize>,
        threads: usize,
    ) -> Result<Vec<Vec<T>>> {
        let encode_one = |(i, s): (usize, &&[u8])| {
            self.encode_limited::<T>(s, limit)
                .map_err(|b| bad_char_error(b, Some(i)))
        };
        let threads = threads.max(1).min(seqs.len().max(1));
        if threads == 1 {
            return seqs.iter().enumerate().map(encode_one).collect();
        }
        let per = seqs.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = seqs
                .chunks(per)
                .enumerate()
                .map(|(c, chunk)| {
                    s.spawn(move || {
                        chunk
                            .iter()
                            .enumerate()
                            .map(|(j, q)| encode_one((c * per + j, q)))
                            .collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(seqs.len());
            for h in handles {
                all.extend(h.join().expect("encoder thread panicked")?);
            }
            Ok(all)
        })
    }

    /// Encode a batch into a padded matrix like DNABERT: `[CLS] tokens [SEP] [PAD]...`.
    pub fn encode_batch<T: TokenId>(
        &self,
        seqs: &[&[u8]],
        max_length: usize,
        add_special_tokens: bool,
        padding: Padding,
        truncation: bool,
        threads: usize,
    ) -> Result<Batch<T>> {
        let n_special = if add_special_tokens { 2 } else { 0 };
        if truncation && max_length <= n_special {
            return Err(Error::invalid(format!(
                "max_length must exceed the {n_special} special tokens, got {max_length}"
            )));
        }
        let limit = truncation.then(|| max_length - n_special);
        let rows = self.encode_many::<T>(seqs, limit, threads)?;
        let longest = rows.iter().map(Vec::len).max().unwrap_or(0) + n_special;
        let cols = match padding {
            Padding::Longest => longest,
            Padding::MaxLength => longest.max(max_length),
        };
        let sp = self.vocab.specials();
        let cells = rows.len().checked_mul(cols).ok_or_else(|| {
            Error::invalid(format!(
                "{} rows of max_length {cols} tokens do not fit in memory addresses",
                rows.len()
            ))
        })?;
        let mut ids = try_filled(cells, T::from_id(sp.pad), "the padded token ids")?;
        let mut mask = try_filled(cells, 0u8, "the attention mask")?;
        for (r, row) in rows.iter().enumerate() {
            let dst = &mut ids[r * cols..(r + 1) * cols];
            let used = row.len() + n_special;
            if add_special_tokens {
                dst[0] = T::from_id(sp.cls);
                dst[1..=row.len()].copy_from_slice(row);
                dst[row.len() + 1] = T::from_id(sp.sep);
            } else {
                dst[..row.len()].copy_from_slice(row);
            }
            mask[r * cols..r * cols + used].fill(1);
        }
        Ok(Batch {
            ids,
            mask,
            rows: rows.len(),
            cols,
        })
    }

    /// Token texts of `ids`, joined by spaces (as `BertTokenizer.decode`).
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        let tokens = self.vocab.tokens();
        let mut words = Vec::with_capacity(ids.len());
        for &id in ids {
            let tok = tokens.get(id as usize).ok_or_else(|| {
                Error::invalid(format!(
                    "token id {id} is outside the vocabulary (size {})",
                    tokens.len()
                ))
            })?;
            if skip_special_tokens && tok.starts_with('[') {
                continue;
            }
            words.push(tok.as_str());
        }
        Ok(words.join(" "))
    }

    /// Nucleotide span `[start, end)` of each of `n` tokens.
    pub fn offsets(&self, n: usize) -> Result<Vec<[u64; 2]>> {
        let (k, s) = (self.k() as u64, self.stride as u64);
        let last = (n as u64).checked_mul(s).and_then(|x| x.checked_add(k));
        if last.is_none() {
            return Err(Error::invalid(format!(
                "{n} tokens overflow 64-bit offsets"
            )));
        }
        let mut out = try_filled(n, [0u64; 2], "the token offsets")?;
        for (i, o) in out.iter_mut().enumerate() {
            *o = [i as u64 * s, i as u64 * s + k];
        }
        Ok(out)
    }
}

fn bad_char_error(b: BadByte, seq: Option<usize>) -> Error {
    let which = seq.map_or(String::new(), |i| format!("sequence {i}: "));
    let what = if b.byte.is_ascii_graphic() {
        format!("'{}'", b.byte as char)
    } else {
        format!("byte 0x{:02x}", b.byte)
    };
    Error::invalid(format!(
        "{which}invalid sequence character {what} at position {}",
        b.offset
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(seq: &str, k: usize, stride: usize) -> Vec<u32> {
        let up = seq.to_ascii_uppercase();
        let b = up.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i + k <= b.len() {
            out.push(
                crate::vocab::kmer_index(std::str::from_utf8(&b[i..i + k]).expect("ascii"))
                    .map_or(1, |x| x as u32 + 5),
            );
            i += stride;
        }
        out
    }

    #[test]
    fn matches_reference_on_mixed_input() {
        let seq = "ACGTacgtNNACGTRYacgtTTGGCCAAtgcaNacg";
        for k in 1..=8 {
            for stride in [1, 2, 3, k] {
                let t = Tokenizer::dnabert(k, stride).expect("tok");
                let got: Vec<u32> = t.encode::<u32>(seq.as_bytes()).expect("enc");
                assert_eq!(got, reference(seq, k, stride), "k={k} stride={stride}");
                assert_eq!(got.len(), t.n_tokens(seq.len()));
            }
        }
    }

    #[test]
    fn streaming_chunks_equal_whole() {
        let seq = b"ACGTTGCANNACGTACGGGTACCA";
        let t = Tokenizer::dnabert(4, 1).expect("tok");
        let whole: Vec<u16> = t.encode(seq).expect("enc");
        let mut st = t.rolling();
        let mut out: Vec<u16> = Vec::new();
        for chunk in seq.chunks(5) {
            t.push_text(&mut st, chunk, &mut out).expect("push");
        }
        assert_eq!(whole, out);
    }

    #[test]
    fn batch_layout() {
        let t = Tokenizer::dnabert(3, 1).expect("tok");
        let b: Batch<u8> = t
            .encode_batch(&[b"ACGTA", b"AC"], 4, true, Padding::Longest, true, 1)
            .expect("batch");
        assert_eq!((b.rows, b.cols), (2, 4));
        assert_eq!(b.ids[0], 2);
        assert_eq!(b.ids[3], 3);
        assert_eq!(&b.ids[4..8], &[2, 3, 0, 0]);
        assert_eq!(&b.mask[4..8], &[1, 1, 0, 0]);
    }
}
