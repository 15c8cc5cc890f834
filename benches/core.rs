//! Criterion benchmarks of the core kernels on a seeded synthetic genome.
//!
//! Run with `cargo bench --bench core`. Every timed closure checks its result (token
//! count and an order-sensitive checksum, or base count and a checksum of the packed
//! codes) against values computed once, before timing, by plain reference code in this
//! file, so a fast wrong answer fails the benchmark instead of reporting a number.

use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dnakmer::fasta::ReadOptions;
use dnakmer::genome::Genome;
use dnakmer::kmer::Tokenizer;
use dnakmer::tokenize::tokenize_fasta;

/// Bases in the benchmark sequence.
const BASES: usize = 8_000_000;
/// FASTA line width.
const LINE: usize = 60;
const K: usize = 6;

/// xorshift64*: a dependency-free, seeded generator (the data only has to be fixed).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// A genome-like sequence: random bases, a run of N every ~1 Mbp, and soft-masked
/// (lowercase) stretches covering about a third of the bases.
fn synthetic_sequence(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = XorShift(seed);
    let mut seq: Vec<u8> = (0..len)
        .map(|_| b"ACGT"[(rng.next() >> 62) as usize])
        .collect();
    for start in (500_000..len).step_by(1_000_000) {
        let n_len = 1_000 + (rng.next() % 5_000) as usize;
        seq[start..(start + n_len).min(len)].fill(b'N');
    }
    let mut pos = 0;
    while pos < len {
        let span = 200 + (rng.next() % 2_000) as usize;
        if rng.next().is_multiple_of(3) {
            seq[pos..(pos + span).min(len)].make_ascii_lowercase();
        }
        pos += span;
    }
    seq
}

/// Reference k-mer ids (DNABERT layout, stride 1): [UNK] = 1 for any non-ACGT k-mer.
fn reference_ids(seq: &[u8], k: usize) -> Vec<u32> {
    seq.windows(k)
        .map(|w| {
            w.iter()
                .try_fold(0u32, |acc, &b| {
                    let code = match b.to_ascii_uppercase() {
                        b'A' => 0,
                        b'T' => 1,
                        b'C' => 2,
                        b'G' => 3,
                        _ => return None,
                    };
                    Some(acc * 4 + code)
                })
                .map_or(1, |index| index + 5)
        })
        .collect()
}

/// Order-sensitive checksum of a sequence of ids: (Σ id, Σ id·position), which the
/// compiler vectorises, so checking costs little next to the work being timed.
fn checksum(ids: impl IntoIterator<Item = u32>) -> (u64, u64) {
    ids.into_iter()
        .zip(1u64..)
        .fold((0, 0), |(sum, weighted), (id, pos)| {
            (
                sum.wrapping_add(u64::from(id)),
                weighted.wrapping_add(u64::from(id).wrapping_mul(pos)),
            )
        })
}

fn fasta_text(seq: &[u8]) -> Vec<u8> {
    let mut text = b">chrBench synthetic\n".to_vec();
    for line in seq.chunks(LINE) {
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    text
}

fn benches(c: &mut Criterion) {
    let seq = synthetic_sequence(BASES, 0x5EED);
    let expected = reference_ids(&seq, K);
    let (n_tokens, sum) = (expected.len(), checksum(expected.iter().copied()));
    let tok = Tokenizer::dnabert(K, 1).expect("tokenizer");

    let mut file = tempfile::NamedTempFile::new().expect("temporary file");
    file.write_all(&fasta_text(&seq)).expect("write FASTA");
    file.flush().expect("flush FASTA");
    let path = file.path().to_path_buf();
    let packed_sum = checksum(
        seq.iter()
            .map(|&b| u32::from(dnakmer::alphabet::base_code(b))),
    );

    let mut group = c.benchmark_group("core");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(BASES as u64));

    group.bench_function("encode_6mer_in_memory", |b| {
        b.iter(|| {
            let ids: Vec<u16> = tok.encode(black_box(&seq)).expect("encode");
            assert_eq!(ids.len(), n_tokens);
            assert_eq!(checksum(ids.iter().map(|&id| u32::from(id))), sum);
        });
    });

    group.bench_function("fasta_to_6mer_ids_plain_file", |b| {
        b.iter(|| {
            let (records, _) =
                tokenize_fasta::<u16>(black_box(&path), &tok, ReadOptions::default(), None)
                    .expect("tokenize");
            assert_eq!(records.len(), 1);
            assert_eq!(records[0].ids.len(), n_tokens);
            assert_eq!(
                checksum(records[0].ids.iter().map(|&id| u32::from(id))),
                sum
            );
        });
    });

    group.bench_function("genome_open_packing", |b| {
        b.iter(|| {
            let genome =
                Genome::open(black_box(&path), ReadOptions::default(), None).expect("open");
            assert_eq!(genome.total_len(), BASES as u64);
            let codes = genome.codes(0, 0, None).expect("codes");
            assert_eq!(checksum(codes.iter().map(|&c| u32::from(c))), packed_sum);
        });
    });
    group.finish();
}

criterion_group!(core, benches);
criterion_main!(core);
