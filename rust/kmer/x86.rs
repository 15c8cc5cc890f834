//! AVX2 block kernel for the most common case: stride 1, sequence text, and DNABERT's
//! id layout (id = k-mer index + offset) in 16-bit ids (k = 4..=7 with DNABERT's
//! vocabulary), which is what DNABERT-6 tokenization of a genome needs.
//!
//! The portable block path of [`super::fast`] writes the codes, 2-mer and 4-mer
//! indices of a block to scratch arrays and joins them in further passes. Here every
//! 32 ids come from `k` overlapping loads of the text kept in registers: the low nibble
//! of an ASCII letter tells A, C, G and T apart in either case (A/a = 1, C/c = 3,
//! G/g = 7, T/t = 4), so one byte shuffle per load turns letters into codes already
//! shifted to their place in the 16-bit k-mer index; the high and low bytes of the
//! indices are OR-ed together, interleaved into 16-bit lanes, offset and stored
//! straight into the output. The same pass checks that every byte is A/C/G/T; a block
//! that holds anything else is not committed (the caller's per-base loop, which
//! defines the semantics, takes it instead).

use std::mem::MaybeUninit;

use std::arch::x86_64::{
    __m256i, _mm256_add_epi16, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_loadu_si256,
    _mm256_movemask_epi8, _mm256_or_si256, _mm256_permute4x64_epi64, _mm256_set1_epi16,
    _mm256_set1_epi8, _mm256_setzero_si256, _mm256_shuffle_epi8, _mm256_storeu_si256,
    _mm256_unpackhi_epi8, _mm256_unpacklo_epi8,
};

/// Ids computed per step (one 32-byte vector of text).
const STEP: usize = 32;
/// Longest context before a step (k - 1 for k <= 8), plus one step: the size of the
/// padded buffers used at the start and end of a block.
const PADDED: usize = 8 + STEP;

/// Shuffle table: low nibble of an ASCII letter -> its code (A=0, T=1, C=2, G=3)
/// shifted left by `shift`; zero for every other nibble.
const fn code_table(shift: u32) -> [u8; 32] {
    let mut t = [0u8; 32];
    let mut lane = 0;
    while lane < 32 {
        t[lane + 1] = 0; // A, a
        t[lane + 4] = 1 << shift; // T, t
        t[lane + 3] = 2 << shift; // C, c
        t[lane + 7] = 3 << shift; // G, g
        lane += 16;
    }
    t
}

/// Shuffle table: low nibble -> the uppercase letter A/C/G/T with that nibble, 0xFF
/// (which no byte with bit 5 cleared equals) otherwise.
const fn letter_table() -> [u8; 32] {
    let mut t = [0xFF; 32];
    let mut lane = 0;
    while lane < 32 {
        t[lane + 1] = b'A';
        t[lane + 4] = b'T';
        t[lane + 3] = b'C';
        t[lane + 7] = b'G';
        lane += 16;
    }
    t
}

/// Shuffle tables of the bases of a k-mer, oldest first: base `m` of `K` carries
/// shift `2 * (K - 1 - m)` in the 16-bit index, i.e. that shift minus 8 in the high
/// byte when it is 8 or more, else that shift in the low byte.
const TABLES: [[u8; 32]; 4] = [code_table(0), code_table(2), code_table(4), code_table(6)];
const LETTERS: [u8; 32] = letter_table();

/// Load 32 bytes.
#[target_feature(enable = "avx2")]
#[inline]
fn load(bytes: &[u8; 32]) -> __m256i {
    // SAFETY: `bytes` is a reference to 32 readable bytes, and an unaligned load has no
    // alignment requirement.
    unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
}

/// Store two vectors of 16 ids.
#[target_feature(enable = "avx2")]
#[inline]
fn store(dst: &mut [MaybeUninit<u16>; STEP], first: __m256i, second: __m256i) {
    // `storeu` takes a `__m256i` pointer but has no alignment requirement.
    #[allow(clippy::cast_ptr_alignment)]
    let ptr = dst.as_mut_ptr().cast::<__m256i>();
    // SAFETY: `dst` is 64 writable bytes (possibly uninitialised, which a store may
    // overwrite) and the two 32-byte stores cover exactly them; unaligned stores have
    // no alignment requirement.
    unsafe {
        _mm256_storeu_si256(ptr, first);
        _mm256_storeu_si256(ptr.add(1), second);
    }
}

/// The constant vectors, loaded once per block.
struct Tables {
    /// Shuffle table of base `m` of the k-mer, oldest first.
    base: [__m256i; 8],
    letters: __m256i,
    case: __m256i,
    offset: __m256i,
}

impl Tables {
    #[target_feature(enable = "avx2")]
    #[inline]
    fn new<const K: usize>(offset: u16) -> Self {
        let mut base = [_mm256_setzero_si256(); 8];
        for (m, slot) in base.iter_mut().enumerate().take(K) {
            *slot = load(&TABLES[(2 * (K - 1 - m) % 8) / 2]);
        }
        Tables {
            base,
            letters: load(&LETTERS),
            case: _mm256_set1_epi8(i8::from_ne_bytes([0xDF])),
            offset: _mm256_set1_epi16(i16::from_ne_bytes(offset.to_ne_bytes())),
        }
    }
}

/// Ids of the 32 k-mers that end at `window[K - 1..K + 31]` (`window` holds the
/// `K - 1` bases before them first), as two vectors of 16 ids in order, and a mask
/// with 0xFF at each of those 32 bytes that is A/C/G/T.
#[target_feature(enable = "avx2")]
#[inline]
fn step<const K: usize>(window: &[u8], t: &Tables) -> (__m256i, __m256i, __m256i) {
    let mut lo = _mm256_setzero_si256();
    let mut hi = _mm256_setzero_si256();
    let mut newest = lo;
    for (m, &table) in t.base.iter().enumerate().take(K) {
        let Some(bytes) = window[m..].first_chunk::<32>() else {
            unreachable!("a window holds K - 1 + 32 bytes");
        };
        let text = load(bytes);
        let code = _mm256_shuffle_epi8(table, text);
        if 2 * (K - 1 - m) >= 8 {
            hi = _mm256_or_si256(hi, code);
        } else {
            lo = _mm256_or_si256(lo, code);
        }
        newest = text;
    }
    let ok = _mm256_cmpeq_epi8(
        _mm256_and_si256(newest, t.case),
        _mm256_shuffle_epi8(t.letters, newest),
    );
    // Byte unpacking works within 128-bit lanes: order the 8-byte quarters 0, 2, 1, 3
    // first, so that the two results hold ids 0-15 and 16-31.
    let lo = _mm256_permute4x64_epi64::<0xD8>(lo);
    let hi = _mm256_permute4x64_epi64::<0xD8>(hi);
    let first = _mm256_add_epi16(_mm256_unpacklo_epi8(lo, hi), t.offset);
    let second = _mm256_add_epi16(_mm256_unpackhi_epi8(lo, hi), t.offset);
    (first, second, ok)
}

/// One step on `parts` copied one after the other and padded with `A` (at most
/// `PADDED` bytes in all), writing the ids of its first `dst.len()` k-mers to `dst`;
/// returns the validity mask of the step.
#[target_feature(enable = "avx2")]
#[inline]
fn padded_step<const K: usize>(
    parts: [&[u8]; 2],
    t: &Tables,
    dst: &mut [MaybeUninit<u16>],
) -> __m256i {
    let mut window = [b'A'; PADDED];
    let (first_part, rest) = window.split_at_mut(parts[0].len());
    first_part.copy_from_slice(parts[0]);
    rest[..parts[1].len()].copy_from_slice(parts[1]);
    let (first, second, ok) = step::<K>(&window, t);
    let mut ids = [MaybeUninit::uninit(); STEP];
    store(&mut ids, first, second);
    dst.copy_from_slice(&ids[..dst.len()]);
    ok
}

/// Whether `src` (at least 32 bytes) holds only A/C/G/T in either case, checked while
/// it is copied into the equally long `dst` 32 bytes at a time, the last 32 bytes
/// overlapping the ones before; `dst` is written even when the check fails.
///
/// # Panics
/// If `src` is shorter than 32 bytes or `dst` is shorter than `src`.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn check_copy(dst: &mut [u8], src: &[u8]) -> bool {
    let n = src.len();
    assert!(n >= STEP && dst.len() >= n);
    let letters = load(&LETTERS);
    let case = _mm256_set1_epi8(i8::from_ne_bytes([0xDF]));
    let mut ok = _mm256_set1_epi8(-1);
    let mut at = 0;
    loop {
        let at_most = at.min(n - STEP);
        let (Some(from), Some(to)) = (
            src[at_most..].first_chunk::<STEP>(),
            dst[at_most..].first_chunk_mut::<STEP>(),
        ) else {
            unreachable!("at_most + STEP <= n");
        };
        let text = load(from);
        let same = _mm256_cmpeq_epi8(
            _mm256_and_si256(text, case),
            _mm256_shuffle_epi8(letters, text),
        );
        ok = _mm256_and_si256(ok, same);
        // SAFETY: `to` is 32 writable bytes; unaligned stores have no alignment
        // requirement.
        unsafe { _mm256_storeu_si256(to.as_mut_ptr().cast(), text) };
        if at_most + STEP == n {
            break;
        }
        at += STEP;
    }
    _mm256_movemask_epi8(ok) == -1
}

/// Ids of the k-mers ending at each byte of `block` (any length), given `context`, the
/// `K - 1` bases before it as text, written to `dst[..block.len()]`: every element of
/// it is initialised. Returns whether every byte of `block` is A/C/G/T (either case);
/// when it is not, the ids written are meaningless.
///
/// # Panics
/// If `dst` is shorter than `block` or `context` is not `K - 1` bytes long.
#[target_feature(enable = "avx2")]
pub(super) fn block_ids<const K: usize>(
    context: &[u8],
    block: &[u8],
    offset: u16,
    dst: &mut [MaybeUninit<u16>],
) -> bool {
    assert!((1..=8).contains(&K) && context.len() == K - 1);
    let n = block.len();
    let dst = &mut dst[..n];
    let t = Tables::new::<K>(offset);
    // The first step takes its context from before the block.
    let head = n.min(STEP);
    let mut ok = padded_step::<K>([context, &block[..head]], &t, &mut dst[..head]);
    // Whole steps with their context inside the block.
    let mut at = head;
    while at + STEP <= n {
        let (first, second, step_ok) = step::<K>(&block[at + 1 - K..at + STEP], &t);
        let Some(out) = dst[at..].first_chunk_mut::<STEP>() else {
            unreachable!("at + STEP <= n");
        };
        store(out, first, second);
        ok = _mm256_and_si256(ok, step_ok);
        at += STEP;
    }
    if at < n {
        let tail_ok = padded_step::<K>([&block[at + 1 - K..], &[]], &t, &mut dst[at..]);
        ok = _mm256_and_si256(ok, tail_ok);
    }
    _mm256_movemask_epi8(ok) == -1
}

#[cfg(test)]
mod tests {
    use super::{block_ids, check_copy};
    use std::mem::MaybeUninit;

    /// Id of each k-mer ending in `block`, straight from the definition.
    fn reference<const K: usize>(context: &[u8], block: &[u8], offset: u16) -> Vec<u16> {
        let text: Vec<u8> = context.iter().chain(block).copied().collect();
        text.windows(K)
            .map(|kmer| {
                let index = kmer.iter().fold(0u32, |acc, &b| {
                    let code = b"ATCG"
                        .iter()
                        .position(|&x| x == b.to_ascii_uppercase())
                        .expect("a base") as u32;
                    acc * 4 + code
                });
                (index + u32::from(offset)) as u16
            })
            .collect()
    }

    fn run<const K: usize>(context: &[u8], block: &[u8], offset: u16) -> (bool, Vec<u16>) {
        let mut dst = vec![MaybeUninit::new(0xBEEF); block.len() + 3];
        // SAFETY: the test only runs where the CPU has AVX2 (checked by the callers).
        let ok = unsafe { block_ids::<K>(context, block, offset, &mut dst) };
        let ids = dst[..block.len()]
            .iter()
            // SAFETY: every element was initialised with 0xBEEF before the call.
            .map(|x| unsafe { x.assume_init() })
            .collect();
        (ok, ids)
    }

    fn random_bases(seed: &mut u64, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                b"ACGTacgt"[(*seed % 8) as usize]
            })
            .collect()
    }

    fn check_k<const K: usize>(seed: &mut u64, offset: u16) {
        let lengths = (0..=100).chain([4095, 4096, 4097]);
        for n in lengths {
            let context = random_bases(seed, K - 1);
            let block = random_bases(seed, n);
            let (ok, ids) = run::<K>(&context, &block, offset);
            assert!(ok, "K={K} n={n}");
            assert_eq!(ids, reference::<K>(&context, &block, offset), "K={K} n={n}");
        }
    }

    #[test]
    fn ids_match_the_definition_for_every_k_and_length() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut seed = 0x2545_F491_4F6C_DD1D;
        check_k::<1>(&mut seed, 5);
        check_k::<2>(&mut seed, 5);
        check_k::<3>(&mut seed, 5);
        check_k::<4>(&mut seed, 5);
        check_k::<5>(&mut seed, 5);
        check_k::<6>(&mut seed, 5);
        check_k::<6>(&mut seed, 0);
        check_k::<7>(&mut seed, 5);
        check_k::<8>(&mut seed, 0);
    }

    #[test]
    fn only_acgt_in_either_case_passes_the_check() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        for byte in 0..=255u8 {
            let base = b"ACGTacgt".contains(&byte);
            for at in [0, 1, 31, 32, 33, 63, 64, 70] {
                let mut block = vec![b'C'; 71];
                block[at] = byte;
                let (ok, _) = run::<6>(b"GATTA", &block, 5);
                assert_eq!(ok, base, "byte {byte:#04x} at {at}");
            }
        }
    }

    #[test]
    fn check_copy_copies_and_checks_every_byte() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut seed = 99;
        for n in 32..=100 {
            let src = random_bases(&mut seed, n);
            let mut dst = vec![0u8; n];
            // SAFETY: the CPU has AVX2, checked above.
            assert!(unsafe { check_copy(&mut dst, &src) });
            assert_eq!(dst, src);
            for byte in 0..=255u8 {
                let mut bad = src.clone();
                bad[(usize::from(byte) * 7) % n] = byte;
                // SAFETY: as above.
                let ok = unsafe { check_copy(&mut dst, &bad) };
                assert_eq!(ok, b"ACGTacgt".contains(&byte), "n={n} byte {byte:#04x}");
                assert_eq!(dst, bad);
            }
        }
    }
}
