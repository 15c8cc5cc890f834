"""``KmerTokenizer`` against the pure-Python reference (tests/reference_tokenizer.py)
and against ``transformers.BertTokenizer(vocab.txt, do_lower_case=False)`` applied to
the space-joined uppercase k-mers, on random sequences and on real genomes."""

from __future__ import annotations

import functools
import gzip
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dnakmer
from fasta_reference import base_codes, fasta_documents, parse_fasta, write_container
from reference_tokenizer import (
    SPECIAL_TOKENS,
    ReferenceTokenizer,
    bert_ids,
    dnabert_vocab,
    kmer_words,
    n_tokens,
)

transformers = pytest.importorskip("transformers")

DATA = Path(__file__).parent / "data"
SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# BertTokenizer splits punctuation off words, so '-', '*' and '.' are compared with the
# reference only.
BERT_ALPHABET = "ACGTACGTacgtNnRYKMSWBDHVUXrykmswbdhvux"
ALPHABET = BERT_ALPHABET + "-*."
SEQ = st.text(BERT_ALPHABET, max_size=120)
K = st.integers(1, 8)
STRIDE = st.integers(1, 10)


@functools.cache
def _vocab_file(k: int) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="dnakmer-vocab-")) / f"vocab{k}.txt"
    dnakmer.KmerTokenizer(k).save_vocab(path)
    return path


@functools.cache
def _bert(vocab_path: Path) -> Any:
    return transformers.BertTokenizer(str(vocab_path), do_lower_case=False)


def _dtype(k: int) -> type:
    return np.uint8 if k <= 3 else np.uint16 if k <= 7 else np.uint32


@SETTINGS
@given(seq=SEQ, k=K, stride=STRIDE)
def test_encode_matches_reference_and_bert(seq: str, k: int, stride: int) -> None:
    tok = dnakmer.KmerTokenizer(k, stride)
    ids = tok.encode(seq)
    assert ids.dtype == _dtype(k)
    expected = ReferenceTokenizer.dnabert(k, stride).encode(seq)
    assert ids.tolist() == expected
    assert expected == bert_ids(_bert(_vocab_file(k)), seq, k, stride)
    assert tok.encode(seq.encode()).tolist() == expected


@SETTINGS
@given(seq=st.text(ALPHABET, max_size=200), k=K, stride=STRIDE)
def test_counts_offsets_and_codes(seq: str, k: int, stride: int) -> None:
    tok = dnakmer.KmerTokenizer(k, stride)
    reference = ReferenceTokenizer.dnabert(k, stride)
    ids = tok.encode(seq)
    assert ids.tolist() == reference.encode(seq)
    assert tok.n_tokens(len(seq)) == len(ids) == n_tokens(len(seq), k, stride)
    offsets = tok.offsets(len(ids))
    assert offsets.shape == (len(ids), 2) and offsets.dtype == np.uint64
    assert [tuple(o) for o in offsets.tolist()] == reference.offsets(len(ids))
    # Each token's span is the k-mer it encodes.
    words = kmer_words(seq, k, stride)
    assert [seq[s:e].upper() for s, e in offsets.tolist()] == words
    codes = np.array(base_codes(seq), dtype=np.uint8)
    assert tok.encode_codes(codes).tolist() == ids.tolist()


@SETTINGS
@given(seq=SEQ, k=st.integers(1, 6), skip=st.booleans())
def test_decode_matches_reference_and_bert(seq: str, k: int, skip: bool) -> None:
    tok = dnakmer.KmerTokenizer(k)
    ids = [tok.cls_token_id, *tok.encode(seq).tolist(), tok.sep_token_id, tok.pad_token_id]
    text = tok.decode(ids, skip_special_tokens=skip)
    assert text == ReferenceTokenizer.dnabert(k).decode(ids, skip_special_tokens=skip)
    assert text == _bert(_vocab_file(k)).decode(ids, skip_special_tokens=skip)


BATCH = st.lists(SEQ, min_size=1, max_size=6)
PADDING = st.sampled_from([True, "longest", "max_length"])


@SETTINGS
@given(
    seqs=BATCH, k=st.integers(1, 7), stride=st.integers(1, 3), max_length=st.integers(3, 40),
    special=st.booleans(), padding=PADDING, truncation=st.booleans(),
)
def test_encode_batch_matches_reference(
    seqs: list[str], k: int, stride: int, max_length: int, special: bool,
    padding: bool | str, truncation: bool,
) -> None:
    tok = dnakmer.KmerTokenizer(k, stride)
    batch = tok.encode_batch(
        seqs, max_length=max_length, add_special_tokens=special, padding=padding,
        truncation=truncation,
    )
    mode = "max_length" if padding == "max_length" else "longest"
    ids, mask = ReferenceTokenizer.dnabert(k, stride).encode_batch(
        seqs, max_length, special, mode, truncation
    )
    assert batch["input_ids"].dtype == _dtype(k)
    assert batch["attention_mask"].dtype == np.uint8
    assert batch["input_ids"].shape == (len(seqs), len(ids[0]))
    assert batch["input_ids"].tolist() == ids
    assert batch["attention_mask"].tolist() == mask


@SETTINGS
@given(seqs=BATCH, k=st.integers(1, 7), max_length=st.integers(3, 40), padding=PADDING)
def test_encode_batch_matches_bert(seqs: list[str], k: int, max_length: int, padding) -> None:
    tok = dnakmer.KmerTokenizer(k)
    batch = tok.encode_batch(seqs, max_length=max_length, padding=padding)
    words = [" ".join(kmer_words(s, k)) for s in seqs]
    bert = _bert(_vocab_file(k))(
        words, max_length=max_length, padding=padding, truncation=True
    )
    assert batch["input_ids"].tolist() == bert["input_ids"]
    assert batch["attention_mask"].tolist() == bert["attention_mask"]


@SETTINGS
@given(seqs=BATCH, k=st.integers(1, 5), max_length=st.integers(3, 30), special=st.booleans())
def test_encode_batch_without_padding(seqs: list[str], k: int, max_length: int, special) -> None:
    tok = dnakmer.KmerTokenizer(k)
    batch = tok.encode_batch(
        seqs, max_length=max_length, add_special_tokens=special, padding="do_not_pad"
    )
    rows = ReferenceTokenizer.dnabert(k).batch_rows(seqs, max_length, special, True)
    assert [r.tolist() for r in batch["input_ids"]] == rows
    assert [m.tolist() for m in batch["attention_mask"]] == [[1] * len(r) for r in rows]


@SETTINGS
@given(
    k=st.integers(1, 4), stride=st.integers(1, 4), seq=SEQ, data=st.data(),
    extra=st.lists(st.sampled_from(["[BOS]", "[EOS]", "[DNA]"]), unique=True),
)
def test_shuffled_vocab_matches_reference_and_bert(
    k: int, stride: int, seq: str, data: st.DataObject, extra: list[str], tmp_path: Path
) -> None:
    vocab = data.draw(st.permutations(dnabert_vocab(k) + extra))
    path = tmp_path / f"shuffled{k}.txt"
    path.write_text("\n".join(vocab) + "\n")
    tok = dnakmer.KmerTokenizer.from_vocab(path, stride=stride)
    reference = ReferenceTokenizer(vocab, stride)
    assert tok.vocab == vocab
    assert (tok.k, tok.stride, tok.vocab_size) == (k, stride, len(vocab))
    assert [tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id,
            tok.mask_token_id] == [vocab.index(t) for t in SPECIAL_TOKENS]
    kmers = ["".join(p) for p in itertools.product("ATCG", repeat=k)]
    assert tok.kmer_ids.tolist() == [vocab.index(w) for w in kmers]
    index = tok.id_to_kmer_index.tolist()
    assert [index[vocab.index(w)] for w in kmers] == list(range(len(kmers)))
    assert sorted(i for i in index if i < 0) == [-1] * (5 + len(extra))
    ids = tok.encode(seq).tolist()
    assert ids == reference.encode(seq)
    bert = transformers.BertTokenizer(str(path), do_lower_case=False)
    assert ids == bert_ids(bert, seq, k, stride)
    assert tok.decode(ids) == reference.decode(ids)


@SETTINGS
@given(
    doc=fasta_documents(), container=st.sampled_from(["plain", "gzip", "bgzf"]),
    split=st.integers(1, 5), k=K, stride=st.integers(1, 4), threads=st.sampled_from([1, 2]),
)
def test_tokenize_files_match_reference(doc, container, split, k, stride, threads, tmp_path):
    """Streaming tokenization of whole files (chunks split anywhere by line breaks,
    gzip members and BGZF blocks) equals the reference on each record's sequence."""
    raw, records = doc
    path = tmp_path / f"random.{container}"
    write_container(path, raw, container, split)
    tok = dnakmer.KmerTokenizer(k, stride)
    reference = ReferenceTokenizer.dnabert(k, stride)
    expected = {name: reference.encode(seq) for name, _, seq in records}
    in_memory = dnakmer.tokenize_fasta(path, tok, threads=threads)
    assert {name: ids.tolist() for name, ids in in_memory.items()} == expected
    out = tmp_path / "tokens"
    manifest = dnakmer.tokenize_genome(path, tok, out, threads=threads, overwrite=True)
    for (name, _, seq), rec in zip(records, manifest["records"], strict=True):
        assert (rec["name"], rec["bases"], rec["n_tokens"]) == (name, len(seq), len(expected[name]))
        assert np.load(out / rec["file"]).tolist() == expected[name]
        assert rec["n_unk"] == expected[name].count(reference.unk)


def test_save_vocab_loads_in_bert(tmp_path: Path) -> None:
    tok = dnakmer.KmerTokenizer(6)
    path = tok.save_vocab(tmp_path)
    assert path == tmp_path / "vocab.txt"
    assert path.read_text().splitlines() == dnabert_vocab(6)
    again = dnakmer.KmerTokenizer.from_vocab(path)
    assert again.vocab_sha256 == tok.vocab_sha256
    with pytest.raises(ValueError, match="k = 5 does not match the 6-mers"):
        dnakmer.KmerTokenizer(5, vocab=str(path))


# --- real genomes ---------------------------------------------------------------------

GENOMES = ["phix174.fa", "lambda_phage.fa.gz", "yeast_chrI.fa.gz"]


@functools.cache
def _genome_sequence(file: str) -> str:
    data = (DATA / file).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    (record,) = parse_fasta(data)
    return record.sequence


@functools.cache
def _reference_ids(file: str, k: int) -> list[int]:
    return ReferenceTokenizer.dnabert(k).encode(_genome_sequence(file))


def test_phix_whole_genome_matches_bert() -> None:
    seq = _genome_sequence("phix174.fa")
    for k, stride in [(6, 1), (3, 3), (8, 1), (1, 1)]:
        ids = dnakmer.KmerTokenizer(k, stride).encode(seq).tolist()
        assert len(ids) == n_tokens(5386, k, stride)
        assert ids == bert_ids(_bert(_vocab_file(k)), seq, k, stride)


@pytest.mark.parametrize("file", ["lambda_phage.fa.gz", "yeast_chrI.fa.gz"])
def test_genome_slices_match_bert(file: str) -> None:
    seq = _genome_sequence(file)
    tok = dnakmer.KmerTokenizer(6)
    bert = _bert(_vocab_file(6))
    for start in (0, len(seq) // 2 + 1, len(seq) - 10_000):
        window = seq[start : start + 10_000]
        assert tok.encode(window).tolist() == bert_ids(bert, window, 6)
    # A batch of 512-token rows as a model sees them.
    rows = [seq[i : i + 600] for i in range(0, 6000, 600)]
    words = [" ".join(kmer_words(r, 6)) for r in rows]
    batch = tok.encode_batch(rows, max_length=512)
    assert batch["input_ids"].tolist() == bert(words, max_length=512, truncation=True,
                                               padding=True)["input_ids"]


@pytest.mark.parametrize("file", GENOMES)
def test_whole_genomes_match_reference(file: str, tmp_path: Path) -> None:
    seq = _genome_sequence(file)
    tok = dnakmer.KmerTokenizer(6)
    expected = _reference_ids(file, 6)
    assert tok.encode(seq).tolist() == expected
    genome = dnakmer.Genome.open(DATA / file)
    (name,) = genome.names
    assert tok.encode_codes(genome.codes(name)).tolist() == expected
    assert dnakmer.tokenize_fasta(DATA / file, tok)[name].tolist() == expected
    manifest = dnakmer.tokenize_genome(DATA / file, tok, tmp_path / "tokens")
    (record,) = manifest["records"]
    on_disk = np.load(tmp_path / "tokens" / record["file"], mmap_mode="r")
    assert on_disk.dtype == np.uint16
    assert on_disk.tolist() == expected
    assert record["n_unk"] == expected.count(1)
    assert manifest["counts"]["tokens"] == len(expected) == len(seq) - 5
