//! dnakmer's core: genome reading and DNABERT-compatible k-mer tokenization.
//!
//! The Python package wraps this crate; every module here is plain Rust and is tested
//! without Python. The bindings live in `py` and are compiled only with the `python`
//! feature.
//!
//! ```
//! use dnakmer::kmer::Tokenizer;
//!
//! // DNABERT-6: ids 0..5 are [PAD] [UNK] [CLS] [SEP] [MASK], then the 4^6 6-mers in
//! // itertools.product("ATCG") order, so AAAAAA = 5 and AAAAAT = 6.
//! let tok = Tokenizer::dnabert(6, 1).unwrap();
//! let ids: Vec<u16> = tok.encode(b"AAAAAATN").unwrap();
//! assert_eq!(ids, vec![5, 6, 1]);
//! ```

pub mod alphabet;
pub mod error;
pub mod fasta;
pub mod genome;
pub mod kmer;
pub mod markov;
pub mod npy;
pub mod source;
pub mod tokenize;
pub mod vcf;
pub mod vocab;
pub mod window_tensors;
pub mod windows;

#[cfg(test)]
mod test_rng;

#[cfg(feature = "python")]
mod py;

pub use error::{Error, Result};
