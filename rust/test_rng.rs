//! A tiny seeded generator for unit tests that build random inputs.

/// Marsaglia's xorshift64; the seed must not be 0.
pub struct XorShift(pub u64);

impl XorShift {
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The make-up of [`XorShift::sequence`] text: one piece in `one_in` is a run of up to
/// `n_run` N, one an IUPAC code (or `n`, `x`, `-`), one a byte of `stray`; the rest are
/// runs of up to `acgt_run` A/C/G/T, a third of them lowercase.
pub struct Mix {
    pub one_in: u64,
    pub n_run: u64,
    pub acgt_run: u64,
    pub stray: &'static [u8],
}

impl XorShift {
    /// Genome-like sequence text of exactly `len` bytes.
    pub fn sequence(&mut self, len: usize, mix: &Mix) -> Vec<u8> {
        let mut seq = Vec::with_capacity(len);
        while seq.len() < len {
            match self.below(mix.one_in) {
                0 => seq.extend(std::iter::repeat_n(
                    b'N',
                    self.below(mix.n_run) as usize + 1,
                )),
                1 => seq.push(b"RYKMSWnx-"[self.below(9) as usize]),
                2 => match mix.stray {
                    [only] => seq.push(*only),
                    bytes => seq.push(bytes[self.below(bytes.len() as u64) as usize]),
                },
                _ => {
                    let run = self.below(mix.acgt_run) as usize + 1;
                    let lower = self.below(3) == 0;
                    for _ in 0..run {
                        let b = b"ACGT"[self.below(4) as usize];
                        seq.push(if lower { b.to_ascii_lowercase() } else { b });
                    }
                }
            }
        }
        seq.truncate(len);
        seq
    }
}
