//! Model inputs and labels of drawn windows, written straight into the final buffers.
//!
//! A window's oriented span is the `+` strand span `[start, start + context_nt + k)`,
//! reverse-complemented for a `-` strand window. Its first `context_nt` bases are the
//! context and its last `k` bases the label, so on the `-` strand the context is the
//! reverse complement of `[start + k, start + k + context_nt)` and the label the reverse
//! complement of `[start, start + k)`.
//!
//! Labels are canonical k-mer indices Σ code·4^(k-1-i) (A=0, T=1, C=2, G=3), the order of
//! DNABERT's default vocabulary, in `u16` (4^8 - 1 fits).

use crate::error::{Error, Result};
use crate::genome::Genome;
use crate::kmer::{TokenId, Tokenizer};
use crate::windows::{oriented_span, Window};

/// Canonical k-mer index of ACGT codes.
#[inline]
#[must_use]
pub fn kmer_index_of_codes(codes: &[u8]) -> u16 {
    codes.iter().fold(0u32, |acc, &c| acc << 2 | u32::from(c)) as u16
}

/// How the context is written into a row of `input_ids`.
pub enum RowEncoder<'a> {
    /// Raw bases: the row is the context's codes (`u8`).
    Codes,
    /// k-mer tokens, optionally framed by `[CLS]` ... `[SEP]`.
    Tokens {
        tokenizer: &'a Tokenizer,
        add_special_tokens: bool,
    },
}

impl RowEncoder<'_> {
    /// Width of one row for a context of `context_nt` bases.
    #[must_use]
    pub fn cols(&self, context_nt: usize) -> usize {
        match self {
            RowEncoder::Codes => context_nt,
            RowEncoder::Tokens {
                tokenizer,
                add_special_tokens,
            } => tokenizer.n_tokens(context_nt) + if *add_special_tokens { 2 } else { 0 },
        }
    }

    /// Check that the tokens of a `context_nt` context cover every one of its bases.
    pub fn check(&self, context_nt: usize) -> Result<()> {
        if context_nt == 0 {
            return Err(Error::invalid("context_nt must be at least 1"));
        }
        let RowEncoder::Tokens { tokenizer, .. } = self else {
            return Ok(());
        };
        let (k, stride) = (tokenizer.k(), tokenizer.stride());
        if context_nt < k {
            return Err(Error::invalid(format!(
                "context_nt = {context_nt} is shorter than the tokenizer's k = {k}"
            )));
        }
        if !(context_nt - k).is_multiple_of(stride) {
            let below = context_nt - (context_nt - k) % stride;
            return Err(Error::invalid(format!(
                "context_nt - k = {} is not a multiple of the stride {stride}, so the last bases \
                 before the label would not be tokenized; use context_nt = {below} or {}",
                context_nt - k,
                below + stride
            )));
        }
        Ok(())
    }

    /// `Some(offset)` when token ids are k-mer index + offset (DNABERT's layout).
    fn kmer_offset(&self) -> Option<u32> {
        match self {
            RowEncoder::Codes => None,
            RowEncoder::Tokens { tokenizer, .. } => offset_layout(tokenizer.vocab().kmer_ids()),
        }
    }

    /// Write the row of an all-ACGT `context`; `offset` is [`Self::kmer_offset`].
    #[inline]
    fn write<T: TokenId>(&self, context: &[u8], row: &mut [T], offset: Option<u32>) {
        match self {
            RowEncoder::Codes => {
                for (dst, &c) in row.iter_mut().zip(context) {
                    *dst = T::from_id(u32::from(c));
                }
            }
            RowEncoder::Tokens {
                tokenizer,
                add_special_tokens,
            } => {
                let sp = tokenizer.vocab().specials();
                let body = if *add_special_tokens {
                    row[0] = T::from_id(sp.cls);
                    let last = row.len() - 1;
                    row[last] = T::from_id(sp.sep);
                    &mut row[1..last]
                } else {
                    row
                };
                encode_acgt_codes(tokenizer, offset, context, body);
            }
        }
    }
}

/// The offset if `table[i] == i + offset` for every k-mer index `i`.
fn offset_layout(table: &[u32]) -> Option<u32> {
    let offset = *table.first()?;
    table
        .iter()
        .zip(offset..)
        .all(|(&id, want)| id == want)
        .then_some(offset)
}

/// Overlapping/strided k-mer ids of ACGT-only codes, into exactly `out.len()` slots.
#[inline]
fn encode_acgt_codes<T: TokenId>(
    tokenizer: &Tokenizer,
    offset: Option<u32>,
    codes: &[u8],
    out: &mut [T],
) {
    let k = tokenizer.k();
    let stride = tokenizer.stride();
    let table = tokenizer.vocab().kmer_ids();
    let mask = (1u32 << (2 * k)) - 1;
    if stride == 1 {
        // Every base from the k-th on ends a token: no emission bookkeeping in the loop.
        let mut id = codes[..k - 1]
            .iter()
            .fold(0u32, |acc, &c| acc << 2 | u32::from(c));
        let pairs = out.iter_mut().zip(&codes[k - 1..]);
        if let Some(offset) = offset {
            // DNABERT's layout: id = k-mer index + 5, no table lookup needed.
            for (slot, &c) in pairs {
                id = (id << 2 | u32::from(c)) & mask;
                *slot = T::from_id(id + offset);
            }
        } else {
            for (slot, &c) in pairs {
                id = (id << 2 | u32::from(c)) & mask;
                *slot = T::from_id(table[id as usize]);
            }
        }
        return;
    }
    let mut id = 0u32;
    let mut next_emit = k;
    let mut slot = 0;
    for (pos, &c) in codes.iter().enumerate() {
        id = (id << 2 | u32::from(c)) & mask;
        if pos + 1 == next_emit {
            out[slot] = T::from_id(table[id as usize]);
            slot += 1;
            if slot == out.len() {
                break;
            }
            next_emit += stride;
        }
    }
}

/// Fill `input_ids` (rows × cols, row-major) and `labels` for `windows`, on `threads`
/// scoped threads over contiguous row chunks.
pub fn fill_rows<T: TokenId>(
    genome: &Genome,
    windows: &[Window],
    context_nt: usize,
    k: usize,
    encoder: &RowEncoder<'_>,
    input_ids: &mut [T],
    labels: &mut [u16],
    threads: usize,
) {
    let cols = encoder.cols(context_nt);
    assert!(cols > 0, "a row holds at least one value");
    assert_eq!(input_ids.len(), windows.len() * cols);
    assert_eq!(labels.len(), windows.len());
    if windows.is_empty() {
        return;
    }
    let span = (context_nt + k) as u64;
    let per = windows.len().div_ceil(threads.max(1));
    let offset = encoder.kmer_offset();
    let fill_chunk = |ws: &[Window], ids: &mut [T], labs: &mut [u16]| {
        let mut buf = Vec::with_capacity(span as usize);
        for ((w, row), label) in ws
            .iter()
            .zip(ids.chunks_exact_mut(cols))
            .zip(labs.iter_mut())
        {
            oriented_span(genome, w, span, &mut buf);
            encoder.write(&buf[..context_nt], row, offset);
            *label = kmer_index_of_codes(&buf[context_nt..]);
        }
    };
    std::thread::scope(|s| {
        let chunks = windows
            .chunks(per)
            .zip(labels.chunks_mut(per))
            .zip(input_ids.chunks_mut(per * cols));
        for ((ws, labs), ids) in chunks {
            s.spawn(move || fill_chunk(ws, ids, labs));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genome::genome_from_text as genome;

    #[test]
    fn minus_strand_is_reverse_complement_of_the_span() {
        let g = genome(b">r\nAACCGGTTAC\n");
        let w = Window {
            rec: 0,
            start: 1,
            minus: true,
            split: 0,
        };
        let mut buf = Vec::new();
        oriented_span(&g, &w, 5, &mut buf);
        // + span ACCGG -> reverse complement CCGGT -> codes C=2 C=2 G=3 G=3 T=1.
        assert_eq!(buf, vec![2, 2, 3, 3, 1]);
    }

    #[test]
    fn rows_match_the_tokenizer() {
        let g = genome(b">r\nACGTTGCAAGTCCATGGATC\n");
        let tok = Tokenizer::dnabert(3, 2).expect("tok");
        let enc = RowEncoder::Tokens {
            tokenizer: &tok,
            add_special_tokens: true,
        };
        let ws = [
            Window {
                rec: 0,
                start: 0,
                minus: false,
                split: 0,
            },
            Window {
                rec: 0,
                start: 4,
                minus: true,
                split: 2,
            },
        ];
        let cols = enc.cols(9);
        assert_eq!(cols, 6);
        let mut ids = vec![0u16; 2 * cols];
        let mut labels = vec![0u16; 2];
        fill_rows(&g, &ws, 9, 2, &enc, &mut ids, &mut labels, 2);
        let want: Vec<u16> = tok.encode(b"ACGTTGCAA").expect("enc");
        assert_eq!(&ids[1..5], &want[..]);
        assert_eq!((ids[0], ids[5]), (2, 3));
        assert_eq!(labels[0], kmer_index_of_codes(&[3, 1])); // "GT"
        let mut rc = b"TGCAAGTCCAT".to_vec();
        crate::alphabet::reverse_complement_in_place(&mut rc);
        let want: Vec<u16> = tok.encode(&rc[..9]).expect("enc");
        assert_eq!(&ids[7..11], &want[..]);
    }
}
