//! Joining FASTA sequence lines for the block encoder of [`super::fast`].
//!
//! The FASTA reader hands sequence lines over one at a time (60-80 bases in most
//! files), which is too short for the block encoder to pay off. Lines made only of
//! A/C/G/T are checked and copied a fixed-size lane at a time into one buffer and
//! encoded together; anything else is encoded at once, on its own, so errors are still
//! reported while the reader is on the offending line.

// The lane loops are compiled twice (plain and AVX2); they must be inlined into each
// copy to be vectorised with that copy's instruction set.
#![allow(clippy::inline_always)]

use super::fast::{Alphabet, Text};
use super::{Rolling, TokenId, Tokenizer};
use crate::fasta::BadByte;

/// Bases gathered from consecutive lines before they are encoded together.
const JOIN_BASES: usize = 1 << 16;
/// Chunks at least this long are encoded where they lie instead of being copied.
const JOIN_DIRECT: usize = 4096;
/// Bytes checked or copied per step in [`LineJoiner`].
const LANE: usize = 32;

/// Whether `bytes` holds only A/C/G/T (either case). Flags are OR-ed lane-wise over
/// fixed-size lanes, the last lane overlapping the one before, and reduced once, so a
/// 60-column line costs a few vector instructions and no byte-by-byte tail.
#[inline(always)]
fn only_acgt(bytes: &[u8]) -> bool {
    if bytes.len() < LANE {
        return bytes.iter().fold(true, |ok, &b| ok & Text::is_base(b));
    }
    let mut bad = [0u8; LANE];
    let last = bytes.len() - LANE;
    let mut start = 0;
    loop {
        if let Some(lane) = bytes[start.min(last)..].first_chunk::<LANE>() {
            for (flag, &b) in bad.iter_mut().zip(lane) {
                *flag |= u8::from(!Text::is_base(b));
            }
        }
        if start >= last {
            break;
        }
        start += LANE;
    }
    bad.iter().fold(0, |acc, &flag| acc | flag) == 0
}

/// Copy `src` into the equally long `dst` in fixed-size lanes (inlined moves rather
/// than a `memcpy` call per line), the last lane overlapping the one before.
#[inline(always)]
fn copy_lanes(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n < LANE {
        dst.copy_from_slice(src);
        return;
    }
    let mut start = 0;
    while start < n - LANE {
        if let (Some(d), Some(s)) = (
            dst[start..].first_chunk_mut::<LANE>(),
            src[start..].first_chunk::<LANE>(),
        ) {
            *d = *s;
        }
        start += LANE;
    }
    dst[n - LANE..].copy_from_slice(&src[n - LANE..]);
}

/// Joins FASTA sequence lines that hold only A/C/G/T, so the block encoder sees runs
/// of tens of kilobases instead of one 60-column line at a time. A line with anything
/// else (N, IUPAC codes, whitespace, a bad byte) first encodes what was joined, then
/// goes through the encoder on its own, so an error is still reported while the
/// parser is on the offending line.
#[derive(Debug)]
pub struct LineJoiner {
    joined: Vec<u8>,
    filled: usize,
}

impl Default for LineJoiner {
    fn default() -> Self {
        LineJoiner {
            joined: vec![0; JOIN_BASES + JOIN_DIRECT],
            filled: 0,
        }
    }
}

impl LineJoiner {
    /// Feed one chunk of sequence text; returns the `[UNK]` ids appended to `out`.
    pub fn push<T: TokenId>(
        &mut self,
        tok: &Tokenizer,
        state: &mut Rolling,
        chunk: &[u8],
        out: &mut Vec<T>,
    ) -> Result<u64, BadByte> {
        let bases = chunk.strip_suffix(b"\r").unwrap_or(chunk);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            if unsafe { self.join_avx2(bases) } {
                return Ok(self.finish_if_full(tok, state, out));
            }
            let n_unk = self.finish(tok, state, out);
            return Ok(n_unk + tok.push_text_counting(state, chunk, out)?);
        }
        if self.join(bases) {
            return Ok(self.finish_if_full(tok, state, out));
        }
        let n_unk = self.finish(tok, state, out);
        Ok(n_unk + tok.push_text_counting(state, chunk, out)?)
    }

    /// Append `bases` if it is a short run of A/C/G/T only; returns whether it was.
    #[inline(always)]
    fn join(&mut self, bases: &[u8]) -> bool {
        if bases.len() >= JOIN_DIRECT || !only_acgt(bases) {
            return false;
        }
        let end = self.filled + bases.len();
        copy_lanes(&mut self.joined[self.filled..end], bases);
        self.filled = end;
        true
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn join_avx2(&mut self, bases: &[u8]) -> bool {
        self.join(bases)
    }

    fn finish_if_full<T: TokenId>(
        &mut self,
        tok: &Tokenizer,
        state: &mut Rolling,
        out: &mut Vec<T>,
    ) -> u64 {
        if self.filled >= JOIN_BASES {
            self.finish(tok, state, out)
        } else {
            0
        }
    }

    /// Encode whatever was joined (call before reading `state` or ending a record);
    /// returns the `[UNK]` ids appended to `out`.
    pub fn finish<T: TokenId>(
        &mut self,
        tok: &Tokenizer,
        state: &mut Rolling,
        out: &mut Vec<T>,
    ) -> u64 {
        if self.filled == 0 {
            return 0;
        }
        let joined = &self.joined[..self.filled];
        self.filled = 0;
        // Only A/C/G/T was joined, so the encoder cannot reject a byte.
        tok.push_text_counting(state, joined, out).unwrap_or(0)
    }
}
