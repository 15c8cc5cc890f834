//! Byte classification tables shared by every kernel.
//!
//! Nucleotide codes follow DNABERT's vocabulary order (`itertools.product("ATCG")`):
//! A = 0, T = 1, C = 2, G = 3. With this order the complement of a code is `code ^ 1`.
//!
//! [`CLASS`] maps every input byte to one class byte:
//! - bits 0–1: the base code (A/T/C/G, meaningful when [`NON_ACGT`] is clear),
//! - [`NON_ACGT`]: an accepted character that is not A/C/G/T (N, IUPAC codes, `-`, `*`, `.`),
//! - [`LOWER`]: the character is lowercase (soft-masked),
//! - [`SKIP`]: whitespace inside a sequence line (space, tab, CR), ignored,
//! - [`INVALID`]: anything else (digits, control bytes, non-ASCII, non-nucleotide letters).

/// Flag: accepted character that is not A, C, G or T.
pub const NON_ACGT: u8 = 0x04;
/// Flag: lowercase (soft-masked) character.
pub const LOWER: u8 = 0x08;
/// Class of whitespace that may appear inside sequence lines.
pub const SKIP: u8 = 0x40;
/// Class of bytes that may not appear in sequence lines.
pub const INVALID: u8 = 0x80;
/// Mask that is zero exactly for A/C/G/T in either case.
pub const NOT_BASE_MASK: u8 = NON_ACGT | SKIP | INVALID;
/// Mask that is non-zero exactly for bytes that are not sequence characters.
pub const NOT_SEQ_MASK: u8 = SKIP | INVALID;

/// The four bases in code order.
pub const BASES: [u8; 4] = *b"ATCG";

/// Accepted non-ACGT characters: N, the IUPAC ambiguity codes, U, X (hard mask),
/// and the gap / stop symbols `-`, `*`, `.`.
const OTHER_UPPER: &[u8] = b"NRYKMSWBDHVUX";
const OTHER_SYMBOLS: &[u8] = b"-*.";

const fn build_class() -> [u8; 256] {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 4 {
        let b = BASES[i];
        t[b as usize] = i as u8;
        t[(b | 0x20) as usize] = i as u8 | LOWER;
        i += 1;
    }
    let mut j = 0;
    while j < OTHER_UPPER.len() {
        let b = OTHER_UPPER[j];
        t[b as usize] = NON_ACGT;
        t[(b | 0x20) as usize] = NON_ACGT | LOWER;
        j += 1;
    }
    let mut s = 0;
    while s < OTHER_SYMBOLS.len() {
        t[OTHER_SYMBOLS[s] as usize] = NON_ACGT;
        s += 1;
    }
    t[b' ' as usize] = SKIP;
    t[b'\t' as usize] = SKIP;
    t[b'\r' as usize] = SKIP;
    t
}

/// Class of every byte (see the module documentation).
pub static CLASS: [u8; 256] = build_class();

const fn build_complement() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as u8;
        i += 1;
    }
    let pairs: &[(u8, u8)] = &[
        (b'A', b'T'),
        (b'C', b'G'),
        (b'R', b'Y'),
        (b'K', b'M'),
        (b'B', b'V'),
        (b'D', b'H'),
        (b'U', b'A'),
    ];
    let mut p = 0;
    while p < pairs.len() {
        let (x, y) = pairs[p];
        t[x as usize] = y;
        t[(x | 0x20) as usize] = y | 0x20;
        if x != b'U' {
            t[y as usize] = x;
            t[(y | 0x20) as usize] = x | 0x20;
        }
        p += 1;
    }
    t
}

/// Watson–Crick complement of a sequence byte, case kept; IUPAC codes map to their
/// complementary code (R↔Y, K↔M, B↔V, D↔H; S, W, N and symbols map to themselves).
pub static COMPLEMENT: [u8; 256] = build_complement();

/// Code of a byte: 0–3 for A/T/C/G in either case, 4 for anything else.
#[inline]
#[must_use]
pub fn base_code(b: u8) -> u8 {
    let c = CLASS[b as usize];
    if c & NOT_BASE_MASK == 0 {
        c & 3
    } else {
        4
    }
}

/// Reverse complement of a byte sequence, in place.
pub fn reverse_complement_in_place(seq: &mut [u8]) {
    seq.reverse();
    for b in seq.iter_mut() {
        *b = COMPLEMENT[*b as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_dnabert_order() {
        assert_eq!(base_code(b'A'), 0);
        assert_eq!(base_code(b't'), 1);
        assert_eq!(base_code(b'C'), 2);
        assert_eq!(base_code(b'g'), 3);
        assert_eq!(base_code(b'N'), 4);
        assert_eq!(CLASS[b'1' as usize], INVALID);
        assert_eq!(CLASS[0], INVALID);
        assert_eq!(CLASS[b'\r' as usize], SKIP);
        assert_eq!(CLASS[b'r' as usize], NON_ACGT | LOWER);
    }

    #[test]
    fn complement_is_an_involution_on_iupac() {
        for &b in b"ACGTRYKMBVDHSWNacgtrykmbvdhswn-*." {
            assert_eq!(COMPLEMENT[COMPLEMENT[b as usize] as usize], b);
        }
        let mut s = b"AcGTNr".to_vec();
        reverse_complement_in_place(&mut s);
        assert_eq!(&s, b"yNACgT");
    }
}
