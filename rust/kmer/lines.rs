//! Joining FASTA sequence lines for the block encoder of [`super::fast`].
//!
//! FASTA sequence lines hold 60-80 bases in most files, which is too short for the
//! block encoder to pay off. Lines made only of A/C/G/T are checked and copied a
//! fixed-size lane at a time into one buffer and encoded together; anything else is
//! encoded at once, on its own, so errors are still reported while the reader is on
//! the offending line. The reader offers the joiner whole runs of lines
//! ([`LineJoiner::push_lines`], which finds each line end where the record's width
//! puts it, with no call per line), and hands over the lines it declines one at a
//! time ([`LineJoiner::push`]).

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

/// Check that `src` holds only A/C/G/T while copying it into the equally long `dst`,
/// one load per lane for both jobs; `dst` is written even when the check fails.
#[inline(always)]
fn check_copy(dst: &mut [u8], src: &[u8]) -> bool {
    let n = src.len();
    if n < LANE {
        dst.copy_from_slice(src);
        return only_acgt(src);
    }
    let mut bad = [0u8; LANE];
    let last = n - LANE;
    let mut start = 0;
    loop {
        let at = start.min(last);
        if let (Some(d), Some(lane)) = (
            dst[at..].first_chunk_mut::<LANE>(),
            src[at..].first_chunk::<LANE>(),
        ) {
            for (flag, &b) in bad.iter_mut().zip(lane) {
                *flag |= u8::from(!Text::is_base(b));
            }
            *d = *lane;
        }
        if at == last {
            break;
        }
        start += LANE;
    }
    bad.iter().fold(0, |acc, &flag| acc | flag) == 0
}

/// What [`LineJoiner::push_lines`] took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Taken {
    /// Bytes of the text, line ends included.
    pub bytes: usize,
    /// Whole lines.
    pub lines: u64,
    /// `[UNK]` ids appended to the output.
    pub n_unk: u64,
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

    /// Take whole lines from the start of `text`, which begins a sequence line, while
    /// they hold only A/C/G/T (either case) and end with `\n` or `\r\n`: each is
    /// checked and copied in one pass, with no call per line. FASTA wraps a record at
    /// one width, so after the first line the next line end is looked for where that
    /// width puts it; the first line that differs (a record's short last line, a
    /// header, an N, a partial line at the end of `text`) stops the run, and is left
    /// to the caller's line-by-line path, as are lines of 4,096 bases or more.
    pub fn push_lines<T: TokenId>(
        &mut self,
        tok: &Tokenizer,
        state: &mut Rolling,
        text: &[u8],
        out: &mut Vec<T>,
    ) -> Taken {
        let mut taken = Taken::default();
        loop {
            let rest = &text[taken.bytes..];
            #[cfg(target_arch = "x86_64")]
            let (bytes, lines) = if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                unsafe { self.take_lines_avx2(rest) }
            } else {
                self.take_lines(rest)
            };
            #[cfg(not(target_arch = "x86_64"))]
            let (bytes, lines) = self.take_lines(rest);
            taken.bytes += bytes;
            taken.lines += lines;
            if self.filled < JOIN_BASES {
                return taken;
            }
            taken.n_unk += self.finish(tok, state, out);
        }
    }

    /// Copy whole A/C/G/T lines from the start of `text` into the joined buffer until
    /// it holds [`JOIN_BASES`] bases or a line does not fit the pattern; returns the
    /// bytes and lines taken.
    #[inline(always)]
    fn take_lines(&mut self, text: &[u8]) -> (usize, u64) {
        self.take_lines_with(text, check_copy)
    }

    /// [`LineJoiner::take_lines`] with the given check-and-copy of a line's bases.
    #[inline(always)]
    fn take_lines_with(
        &mut self,
        text: &[u8],
        check_copy: impl Fn(&mut [u8], &[u8]) -> bool,
    ) -> (usize, u64) {
        let Some(first_end) = memchr::memchr(b'\n', &text[..text.len().min(JOIN_DIRECT)]) else {
            return (0, 0);
        };
        // Width of the line and length of its end (`\n` or `\r\n`).
        let (width, eol) = match first_end.checked_sub(1) {
            Some(cr) if text[cr] == b'\r' => (cr, 2),
            _ => (first_end, 1),
        };
        if width == 0 {
            return (0, 0);
        }
        let step = width + eol;
        let (mut pos, mut lines) = (0, 0);
        while self.filled < JOIN_BASES {
            let Some(line) = text.get(pos..pos + step) else {
                break;
            };
            let (bases, end) = line.split_at(width);
            let ends_line = if eol == 1 {
                end[0] == b'\n'
            } else {
                end == b"\r\n"
            };
            let dst = &mut self.joined[self.filled..self.filled + width];
            if !ends_line || !check_copy(dst, bases) {
                break;
            }
            self.filled += width;
            pos += step;
            lines += 1;
        }
        (pos, lines)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn take_lines_avx2(&mut self, text: &[u8]) -> (usize, u64) {
        self.take_lines_with(text, |dst, bases| {
            if bases.len() >= 32 {
                super::x86::check_copy(dst, bases)
            } else {
                check_copy(dst, bases)
            }
        })
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

#[cfg(test)]
mod tests {
    use super::LineJoiner;

    /// Lines of A/C/G/T of one width, then lines that stop a run: a short line, an N,
    /// a blank line, a header, a CR inside a line, a line without its end.
    fn text(width: usize, eol: &[u8]) -> Vec<u8> {
        let mut text = Vec::new();
        let mut seed = 7u32;
        for stop in [&b"ACG"[..], b"ACNGT", b"", b">chr2", b"AC\rGT", b"GATTACA"] {
            for _ in 0..40 {
                text.extend((0..width).map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    b"ACGTacgt"[(seed >> 16) as usize % 8]
                }));
                text.extend_from_slice(eol);
            }
            text.extend_from_slice(stop);
            if stop != b"GATTACA" {
                text.extend_from_slice(eol);
            }
        }
        text
    }

    /// Every run of lines `take` takes from each line start of `text`, and the bases
    /// it joined.
    fn runs(take: impl Fn(&mut LineJoiner, &[u8]) -> (usize, u64), text: &[u8]) -> Vec<u8> {
        let mut seen = Vec::new();
        for start in 0..text.len() {
            if start > 0 && text[start - 1] != b'\n' {
                continue;
            }
            let mut joiner = LineJoiner::default();
            let (bytes, lines) = take(&mut joiner, &text[start..]);
            let newlines = text[start..start + bytes].iter().filter(|&&b| b == b'\n');
            assert_eq!(newlines.count() as u64, lines);
            assert!(bytes == 0 || text[start + bytes - 1] == b'\n');
            seen.extend_from_slice(format!("{start}:{bytes}:{lines}:").as_bytes());
            seen.extend_from_slice(&joiner.joined[..joiner.filled]);
        }
        seen
    }

    #[test]
    fn lines_are_taken_alike_with_and_without_avx2() {
        for width in [1, 31, 32, 33, 60, 61, 80, 4094] {
            for eol in [&b"\n"[..], b"\r\n"] {
                let text = text(width, eol);
                let plain = runs(LineJoiner::take_lines, &text);
                assert!(plain.len() > 40 * width, "width {width}: lines were taken");
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    let avx2 = runs(|j, t| unsafe { j.take_lines_avx2(t) }, &text);
                    assert!(plain == avx2, "width {width}");
                }
            }
        }
    }
}
