//! Fast path of the rolling encoder for stride 1, the layout of DNABERT.
//!
//! Genomes are almost entirely A/C/G/T, so a chunk is cut into blocks of [`BLOCK`]
//! bases and every block that holds only A/C/G/T (either case) while the encoder is
//! past the warm-up of a record is encoded without per-base branches: the block's
//! codes are written to a small array (after the codes of the `k - 1` bases before
//! it), 2-mer and 4-mer indices are built from it by doubling, in bytes, and each
//! k-mer index joins at most three of those streams, all in plain loops that the
//! compiler turns into vector code. Any other block (an `N`,
//! whitespace, a bad byte, the first `k - 1` bases of a record) goes through the
//! general per-base loop [`Rolling::push`], which defines the semantics; both paths
//! leave the encoder in the same state.
//!
//! On x86-64 the block loop is compiled twice, plain and for AVX2, and the variant is
//! picked at run time, so a wheel built for generic x86-64 still uses wide vectors.
//! For text and 16-bit ids of DNABERT's layout (DNABERT-4 to -7) the AVX2 block
//! kernel of [`super::x86`] replaces the scratch arrays. Runs of `N` (assembly gaps)
//! are taken in one step, as the per-base loop would take them one base at a time.

// The block loop is compiled twice (plain and AVX2); its helpers must be inlined into
// each copy to be vectorised with that copy's instruction set.
#![allow(clippy::inline_always)]

use super::{Rolling, TokenId};
use crate::fasta::BadByte;

/// Bases per block: big enough that per-block set-up is noise, small enough that
/// the codes and indices of a block stay in L1.
const BLOCK: usize = 1024;
/// Bases per block of the AVX2 kernel, which needs no scratch arrays: a block costs
/// one padded step at each end, and a block that holds a non-base is encoded again by
/// the per-base loop up to its last non-base.
#[cfg(target_arch = "x86_64")]
const X86_BLOCK: usize = 4096;
/// Fewest bases before a non-base in a block worth another call of the block path.
const MIN_BLOCK: usize = 64;
/// Room for the `k - 1` bases of context before a block (k <= 8).
const CONTEXT: usize = 8;

/// The two inputs the encoder reads: sequence text and base codes.
pub(super) trait Alphabet {
    /// Whether this is sequence text (A/C/G/T letters), not base codes.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    const TEXT: bool;
    /// Whether `b` is A/C/G/T.
    fn is_base(b: u8) -> bool;
    /// Whether `b` marks an unknown base the usual way (N or n, code 4), so that a run
    /// of them (an assembly gap) can be skipped in one step.
    fn is_gap(b: u8) -> bool;
    /// Code (A=0, T=1, C=2, G=3) of a byte for which [`Alphabet::is_base`] holds.
    fn code(b: u8) -> u8;
}

/// FASTA text: A/C/G/T in either case.
pub(super) struct Text;

impl Alphabet for Text {
    const TEXT: bool = true;

    #[inline(always)]
    #[allow(clippy::needless_bitwise_bool)]
    fn is_base(b: u8) -> bool {
        // Non-short-circuit comparisons: four vector compares, no bit-test branches.
        let upper = b & 0xDF;
        (upper == b'A') | (upper == b'C') | (upper == b'G') | (upper == b'T')
    }

    #[inline(always)]
    fn is_gap(b: u8) -> bool {
        b | 0x20 == b'n'
    }

    /// Bits 1-2 of the ASCII letter give A=0, C=1, T=2, G=3 (either case); swapping
    /// the two bits turns that into DNABERT's A=0, T=1, C=2, G=3 without a table, so
    /// the block loop vectorises.
    #[inline(always)]
    fn code(b: u8) -> u8 {
        let x = (b >> 1) & 3;
        ((x << 1) | (x >> 1)) & 3
    }
}

/// Base codes as `Genome.codes` returns them: 0-3, and 4 for anything else.
pub(super) struct Codes;

impl Alphabet for Codes {
    const TEXT: bool = false;

    #[inline(always)]
    fn is_base(b: u8) -> bool {
        b < 4
    }

    #[inline(always)]
    fn is_gap(b: u8) -> bool {
        b == 4
    }

    #[inline(always)]
    fn code(b: u8) -> u8 {
        b & 3
    }
}

/// How a k-mer index (Σ code·4^(k-1-i)) becomes a token id.
#[derive(Clone, Copy)]
pub(super) enum IdMap<'a> {
    /// id = index + offset (DNABERT's vocabulary: offset 5).
    Offset(u32),
    /// id = table\[index\] (a `vocab.txt` with its own order).
    Table(&'a [u32]),
}

/// Everything the per-base loop needs besides the bytes.
#[derive(Clone, Copy)]
pub(super) struct Lookup<'a> {
    pub classes: &'a [u8; 256],
    pub table: &'a [u32],
    pub map: IdMap<'a>,
    pub unk: u32,
}

/// Per-block scratch: codes of the block and of the `k - 1` bases before it, and the
/// k-mer index of every position of the block.
struct Scratch {
    codes: [u8; BLOCK + CONTEXT],
    /// Index of the 2-mer starting at each position (4 bits).
    pairs: [u8; BLOCK + CONTEXT],
    /// Index of the 4-mer starting at each position (8 bits).
    quads: [u8; BLOCK + CONTEXT],
    indices: [u16; BLOCK],
}

/// `dst[i] = (a[i] << shift) | b[i]` over equal-length slices (a vectorisable map).
#[inline(always)]
fn combine(dst: &mut [u8], a: &[u8], b: &[u8], shift: u32) {
    for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        *d = (x << shift) | y;
    }
}

/// Fill `scratch.indices[..bytes.len()]` with the k-mer index at each position of the
/// block; `scratch.codes[..K - 1]` already holds the codes of the bases before it.
/// Returns `false`, with the scratch unspecified, when a byte is not a base.
#[inline(always)]
fn block_indices<A: Alphabet, const K: usize>(bytes: &[u8], scratch: &mut Scratch) -> bool {
    // A fold without early exit: the compiler checks 32 bytes per instruction.
    if !bytes.iter().fold(true, |ok, &b| ok & A::is_base(b)) {
        return false;
    }
    let n = bytes.len();
    let Scratch {
        codes,
        pairs,
        quads,
        indices,
    } = scratch;
    for (slot, &b) in codes[K - 1..K - 1 + n].iter_mut().zip(bytes) {
        *slot = A::code(b);
    }
    // k-mer indices by doubling: 2-mers and 4-mers fit in bytes (32 lanes per AVX2
    // vector), then at most three streams are joined into 16-bit indices.
    if K >= 2 {
        let m = n + K - 2;
        let (head, tail) = (&codes[..m], &codes[1..=m]);
        combine(&mut pairs[..m], head, tail, 2);
    }
    if K >= 4 {
        let m = n + K - 4;
        let (head, tail) = (&pairs[..m], &pairs[2..m + 2]);
        combine(&mut quads[..m], head, tail, 4);
    }
    let out = &mut indices[..n];
    let wide = |x: u8| u16::from(x);
    match K {
        1 => out
            .iter_mut()
            .zip(&codes[..n])
            .for_each(|(o, &c)| *o = wide(c)),
        2 => out
            .iter_mut()
            .zip(&pairs[..n])
            .for_each(|(o, &p)| *o = wide(p)),
        3 => {
            let streams = pairs[..n].iter().zip(&codes[2..n + 2]);
            out.iter_mut()
                .zip(streams)
                .for_each(|(o, (&p, &c))| *o = wide(p) << 2 | wide(c));
        }
        4 => out
            .iter_mut()
            .zip(&quads[..n])
            .for_each(|(o, &q)| *o = wide(q)),
        5 => {
            let streams = quads[..n].iter().zip(&codes[4..n + 4]);
            out.iter_mut()
                .zip(streams)
                .for_each(|(o, (&q, &c))| *o = wide(q) << 2 | wide(c));
        }
        6 => {
            let streams = quads[..n].iter().zip(&pairs[4..n + 4]);
            out.iter_mut()
                .zip(streams)
                .for_each(|(o, (&q, &p))| *o = wide(q) << 4 | wide(p));
        }
        7 => {
            let streams = quads[..n]
                .iter()
                .zip(&pairs[4..n + 4])
                .zip(&codes[6..n + 6]);
            out.iter_mut().zip(streams).for_each(|(o, ((&q, &p), &c))| {
                *o = wide(q) << 6 | wide(p) << 2 | wide(c);
            });
        }
        _ => {
            let streams = quads[..n].iter().zip(&quads[4..n + 4]);
            out.iter_mut()
                .zip(streams)
                .for_each(|(o, (&q, &r))| *o = wide(q) << 8 | wide(r));
        }
    }
    true
}

/// Append the ids of `indices` to `out`.
#[inline(always)]
fn emit<T: TokenId>(indices: &[u16], map: IdMap<'_>, out: &mut Vec<T>) {
    match map {
        IdMap::Offset(offset) => {
            out.extend(indices.iter().map(|&i| T::from_id(u32::from(i) + offset)));
        }
        IdMap::Table(table) => {
            out.extend(indices.iter().map(|&i| T::from_id(table[usize::from(i)])));
        }
    }
}

/// Put the codes of the last `K - 1` bases (held in the k-mer index `id`) before a
/// block.
#[inline(always)]
fn load_context<const K: usize>(id: u32, codes: &mut [u8; BLOCK + CONTEXT]) {
    for (j, slot) in codes.iter_mut().enumerate().take(K - 1) {
        *slot = ((id >> (2 * (K - 1 - j) - 2)) & 3) as u8;
    }
}

impl Rolling {
    /// Take `n` bases that are not A/C/G/T at once, as [`Rolling::push`] would one by
    /// one with stride 1: the k-mer restarts, and every position that ends a token
    /// appends `[UNK]`. Returns how many it appended.
    fn skip_gap<T: TokenId>(&mut self, n: usize, unk: u32, out: &mut Vec<T>) -> u64 {
        debug_assert!(self.stride == 1 && self.next_emit > self.pos);
        let end = self.pos + n as u64;
        // Tokens end at next_emit, next_emit + 1, ... up to `end`.
        let emitted = (end + 1).saturating_sub(self.next_emit);
        self.run = 0;
        self.pos = end;
        self.next_emit += emitted;
        out.resize(out.len() + emitted as usize, T::from_id(unk));
        emitted
    }

    /// [`Rolling::push`] for stride 1 and `k == K`, returning the number of `[UNK]`
    /// ids it appended. Blocks of A/C/G/T after the warm-up go to `block`, which gets
    /// the current k-mer index and whether the block follows the previous block
    /// directly, and appends the block's ids and returns the index of its last k-mer,
    /// or returns `None` and appends nothing when a byte is not A/C/G/T.
    #[inline(always)]
    fn push_blocks_with<A: Alphabet, T: TokenId, const K: usize>(
        &mut self,
        bytes: &[u8],
        lookup: Lookup<'_>,
        out: &mut Vec<T>,
        block_len: usize,
        mut block_fn: impl FnMut(u32, bool, &[u8], &mut Vec<T>) -> Option<u32>,
    ) -> Result<u64, BadByte> {
        debug_assert!(self.stride == 1 && self.k == K as u64);
        out.reserve(bytes.len());
        let mut n_unk = 0u64;
        let mut follows = false;
        let mut done = 0;
        while done < bytes.len() {
            let gap = bytes[done..].iter().take_while(|&&b| A::is_gap(b)).count();
            if gap > 0 {
                n_unk += self.skip_gap(gap, lookup.unk, out);
                follows = false;
                done += gap;
                continue;
            }
            let end = if self.run == K as u64 {
                let block = &bytes[done..(done + block_len).min(bytes.len())];
                let first_bad = || block.iter().position(|&b| !A::is_base(b)).unwrap_or(0);
                let taken = block_fn(self.id, follows, block, out)
                    .map(|id| (id, block.len()))
                    .or_else(|| {
                        // The bases before the block's first non-base can still take
                        // the block path, unless they are too few to be worth it.
                        let n = first_bad();
                        (n >= MIN_BLOCK)
                            .then(|| block_fn(self.id, follows, &block[..n], out))
                            .flatten()
                            .map(|id| (id, n))
                    });
                if let Some((id, n)) = taken {
                    self.id = id;
                    self.pos += n as u64;
                    self.next_emit += n as u64;
                    follows = true;
                    done += n;
                    continue;
                }
                let first = first_bad();
                if first > 0 && A::is_gap(block[first]) {
                    // Up to the gap, which the next round skips.
                    done + first
                } else {
                    // Up to the block's last non-base byte; the bases after it go back
                    // to the block path once the k-mer has refilled.
                    let last_bad = block.iter().rposition(|&b| !A::is_base(b)).unwrap_or(0);
                    done + last_bad + 1
                }
            } else {
                // Warm-up (record start, or after a non-base): just enough bases to
                // fill a k-mer, so short sequences such as 512-token windows do not
                // go base by base.
                (done + (K as u64 - self.run) as usize).min(bytes.len())
            };
            follows = false;
            let before = out.len();
            self.push(
                &bytes[done..end],
                lookup.classes,
                lookup.table,
                lookup.unk,
                out,
            )
            .map_err(|bad| BadByte {
                offset: bad.offset + done,
                byte: bad.byte,
            })?;
            n_unk += out[before..]
                .iter()
                .filter(|id| id.to_id() == lookup.unk)
                .count() as u64;
            done = end;
        }
        Ok(n_unk)
    }

    /// The portable block path: codes, 2-mer and 4-mer indices in scratch arrays.
    #[inline(always)]
    fn push_blocks<A: Alphabet, T: TokenId, const K: usize>(
        &mut self,
        bytes: &[u8],
        lookup: Lookup<'_>,
        out: &mut Vec<T>,
    ) -> Result<u64, BadByte> {
        let mut scratch = Scratch {
            codes: [0; BLOCK + CONTEXT],
            pairs: [0; BLOCK + CONTEXT],
            quads: [0; BLOCK + CONTEXT],
            indices: [0; BLOCK],
        };
        self.push_blocks_with::<A, T, K>(bytes, lookup, out, BLOCK, |id, follows, block, out| {
            if !follows {
                load_context::<K>(id, &mut scratch.codes);
            }
            if !block_indices::<A, K>(block, &mut scratch) {
                return None;
            }
            let n = block.len();
            emit(&scratch.indices[..n], lookup.map, out);
            scratch.codes.copy_within(n..n + K - 1, 0);
            Some(u32::from(scratch.indices[n - 1]))
        })
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn push_blocks_avx2<A: Alphabet, T: TokenId, const K: usize>(
        &mut self,
        bytes: &[u8],
        lookup: Lookup<'_>,
        out: &mut Vec<T>,
    ) -> Result<u64, BadByte> {
        self.push_blocks::<A, T, K>(bytes, lookup, out)
    }

    /// The AVX2 kernel of [`super::x86`] for text and 16-bit ids of DNABERT's layout
    /// (`offset` + k-mer index).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn push_blocks_x86<const K: usize>(
        &mut self,
        bytes: &[u8],
        lookup: Lookup<'_>,
        offset: u16,
        out: &mut Vec<u16>,
    ) -> Result<u64, BadByte> {
        let mut context = [0u8; CONTEXT];
        self.push_blocks_with::<Text, u16, K>(bytes, lookup, out, X86_BLOCK, |id, _, block, out| {
            // The K - 1 bases before the block, as letters, from the k-mer index.
            for (j, slot) in context.iter_mut().enumerate().take(K - 1) {
                let code = (id >> (2 * (K - 2 - j))) & 3;
                *slot = crate::alphabet::BASES[code as usize];
            }
            let n = block.len();
            let len = out.len();
            let spare = &mut out.spare_capacity_mut()[..n];
            if !super::x86::block_ids::<K>(&context[..K - 1], block, offset, spare) {
                return None;
            }
            // SAFETY: `block_ids` initialised all of `spare`, the `n` elements after the
            // first `len`, and the capacity covers them (checked by the slicing above).
            unsafe { out.set_len(len + n) };
            Some(u32::from(out[len + n - 1] - offset))
        })
    }

    fn push_k<A: Alphabet, T: TokenId, const K: usize>(
        &mut self,
        bytes: &[u8],
        lookup: Lookup<'_>,
        out: &mut Vec<T>,
    ) -> Result<u64, BadByte> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            if let (true, IdMap::Offset(offset), Some(out)) = (
                A::TEXT,
                lookup.map,
                (out as &mut dyn std::any::Any).downcast_mut::<Vec<u16>>(),
            ) {
                let last = offset + (1 << (2 * K)) - 1;
                if let (Ok(offset), Ok(_)) = (u16::try_from(offset), u16::try_from(last)) {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    return unsafe { self.push_blocks_x86::<K>(bytes, lookup, offset, out) };
                }
            }
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.push_blocks_avx2::<A, T, K>(bytes, lookup, out) };
        }
        self.push_blocks::<A, T, K>(bytes, lookup, out)
    }

    /// Encode a chunk like [`Rolling::push`] and return how many `[UNK]` ids it
    /// appended; stride 1 takes the block path.
    pub(super) fn push_counting<A: Alphabet, T: TokenId>(
        &mut self,
        bytes: &[u8],
        lookup: Lookup<'_>,
        out: &mut Vec<T>,
    ) -> Result<u64, BadByte> {
        // Whitespace is ignored, so a CRLF line's trailing '\r' is dropped here
        // rather than sending its whole last block down the per-base loop.
        let trimmed = match bytes.split_last() {
            Some((&last, rest)) if lookup.classes[last as usize] == crate::alphabet::SKIP => rest,
            _ => bytes,
        };
        if self.stride != 1 {
            let before = out.len();
            self.push(bytes, lookup.classes, lookup.table, lookup.unk, out)?;
            let unk = out[before..].iter().filter(|id| id.to_id() == lookup.unk);
            return Ok(unk.count() as u64);
        }
        match self.k {
            1 => self.push_k::<A, T, 1>(trimmed, lookup, out),
            2 => self.push_k::<A, T, 2>(trimmed, lookup, out),
            3 => self.push_k::<A, T, 3>(trimmed, lookup, out),
            4 => self.push_k::<A, T, 4>(trimmed, lookup, out),
            5 => self.push_k::<A, T, 5>(trimmed, lookup, out),
            6 => self.push_k::<A, T, 6>(trimmed, lookup, out),
            7 => self.push_k::<A, T, 7>(trimmed, lookup, out),
            _ => self.push_k::<A, T, 8>(trimmed, lookup, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::alphabet::CLASS;
    use crate::kmer::{LineJoiner, Tokenizer};
    use crate::vocab::Vocab;

    use crate::test_rng::{Mix, XorShift};

    /// Mostly A/C/G/T in both cases, with N runs, IUPAC codes and stray CRs.
    fn genome_like(rng: &mut XorShift, len: usize) -> Vec<u8> {
        let mix = Mix {
            one_in: 40,
            n_run: 30,
            acgt_run: 3000,
            stray: b"\r",
        };
        rng.sequence(len, &mix)
    }

    /// The per-base loop alone: the definition the block path must match.
    fn per_base(tok: &Tokenizer, seq: &[u8]) -> (Vec<u32>, u64) {
        let lookup = tok.lookup(&CLASS);
        let mut state = tok.rolling();
        let mut out = Vec::new();
        state
            .push(seq, &CLASS, lookup.table, lookup.unk, &mut out)
            .expect("valid");
        let unk = out.iter().filter(|&&id| id == lookup.unk).count() as u64;
        (out, unk)
    }

    /// A vocabulary with the k-mers in reverse order, so ids come from the table.
    fn reversed_vocab(k: usize) -> Vocab {
        let dnabert = Vocab::dnabert(k).expect("vocab");
        let tokens = dnabert.tokens();
        let mut lines: Vec<&str> = tokens[..5].iter().map(String::as_str).collect();
        lines.extend(tokens[5..].iter().rev().map(String::as_str));
        Vocab::from_lines(&lines.join("\n"), None).expect("reversed vocab")
    }

    #[test]
    fn block_path_matches_per_base_loop() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for k in 1..=8 {
            for vocab in [Vocab::dnabert(k).expect("vocab"), reversed_vocab(k)] {
                let tok = Tokenizer::new(vocab, 1).expect("tok");
                for len in [0, 1, k, 1023, 1024, 1025, 5000] {
                    let seq = genome_like(&mut rng, len);
                    let (want, want_unk) = per_base(&tok, &seq);
                    let mut state = tok.rolling();
                    let mut got: Vec<u32> = Vec::new();
                    let unk = tok
                        .push_text_counting(&mut state, &seq, &mut got)
                        .expect("ok");
                    assert_eq!(got, want, "k={k} len={len}");
                    assert_eq!(unk, want_unk, "k={k} len={len}");
                    // Line by line through the joiner, as the FASTA reader feeds it.
                    let mut state = tok.rolling();
                    let mut joiner = LineJoiner::default();
                    let mut lines: Vec<u32> = Vec::new();
                    let mut unk = 0;
                    for line in seq.chunks(rng.below(90) as usize + 1) {
                        unk += joiner.push(&tok, &mut state, line, &mut lines).expect("ok");
                    }
                    unk += joiner.finish(&tok, &mut state, &mut lines);
                    assert_eq!(lines, want, "k={k} len={len} lines");
                    assert_eq!(unk, want_unk);
                    assert_eq!(
                        state.bases(),
                        seq.iter().filter(|&&b| b != b'\r').count() as u64
                    );
                }
            }
        }
    }

    #[test]
    fn sixteen_bit_ids_match_per_base_loop() {
        // 16-bit ids of DNABERT's layout take the AVX2 kernel where the CPU has it
        // (for any k, although the vocabularies of k <= 3 normally use 8-bit ids);
        // a table-ordered vocabulary keeps the portable block path.
        let mut rng = XorShift(0x0123_4567_89AB_CDEF);
        for k in 1..=7 {
            for vocab in [Vocab::dnabert(k).expect("vocab"), reversed_vocab(k)] {
                let tok = Tokenizer::new(vocab, 1).expect("tok");
                for len in [0, 1, k, 31, 32, 33, 4095, 4096, 4097, 9000] {
                    let seq = genome_like(&mut rng, len);
                    let (want, want_unk) = per_base(&tok, &seq);
                    let want: Vec<u16> = want.iter().map(|&id| id as u16).collect();
                    let mut state = tok.rolling();
                    let mut got: Vec<u16> = Vec::new();
                    let unk = tok
                        .push_text_counting(&mut state, &seq, &mut got)
                        .expect("ok");
                    assert_eq!(got, want, "k={k} len={len}");
                    assert_eq!(unk, want_unk, "k={k} len={len}");
                    // In pieces, so blocks start with context carried in the state.
                    let mut state = tok.rolling();
                    let mut pieces: Vec<u16> = Vec::new();
                    let mut unk = 0;
                    for piece in seq.chunks(rng.below(5000) as usize + 1) {
                        unk += tok
                            .push_text_counting(&mut state, piece, &mut pieces)
                            .expect("ok");
                    }
                    assert_eq!(pieces, want, "k={k} len={len} pieces");
                    assert_eq!(unk, want_unk);
                }
            }
        }
    }

    #[test]
    fn bad_byte_offsets_are_within_the_chunk() {
        let tok = Tokenizer::dnabert(6, 1).expect("tok");
        let mut seq = vec![b'A'; 3000];
        seq[2500] = b'1';
        let mut state = tok.rolling();
        let mut out: Vec<u16> = Vec::new();
        let bad = tok
            .push_text_counting(&mut state, &seq, &mut out)
            .expect_err("bad");
        assert_eq!((bad.offset, bad.byte), (2500, b'1'));
        // Past the first block of the AVX2 kernel too.
        let mut seq = vec![b'c'; 20_000];
        seq[9000] = 0xC3;
        let mut state = tok.rolling();
        out.clear();
        let bad = tok
            .push_text_counting(&mut state, &seq, &mut out)
            .expect_err("bad");
        assert_eq!((bad.offset, bad.byte), (9000, 0xC3));
        assert_eq!(out.len(), 9000 - 5);
    }
}
