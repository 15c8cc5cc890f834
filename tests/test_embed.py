"""Embedding extraction, the genome tiling store and the embedding analyses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dnakmer import Genome
from dnakmer.datasets.store import load_arrays, read_manifest
from dnakmer.datasets.windows import kmer_codes, reverse_complement_codes, sample_windows
from dnakmer.models import LoadedModel
from dnakmer.probes.embedding_analysis import (
    kmer_colourings,
    kmer_similarity,
    linear_probes,
    project,
    strand_consistency,
)
from dnakmer.probes.embeddings import (
    embed_genome,
    encode_windows,
    hidden_states,
    static_embeddings,
    tokens_to_nucleotides,
)
from probe_reference import nucleotide_mean_reference


@pytest.fixture(scope="module")
def windows(lambda_genome: Genome) -> np.ndarray:
    return sample_windows(lambda_genome, 12, 40, seed=9).codes


def test_static_embeddings_are_kmer_rows_in_dnabert_order(tiny3: LoadedModel) -> None:
    emb = static_embeddings(tiny3)
    assert emb.shape == (64, 32) and emb.dtype == np.float32
    weight = tiny3.model.get_input_embeddings().weight.detach().numpy()
    aaa, atc = tiny3.tokenizer.encode("AAA")[0], tiny3.tokenizer.encode("ATC")[0]
    np.testing.assert_array_equal(emb[0], weight[aaa])
    np.testing.assert_array_equal(emb[6], weight[atc])  # A=0 T=1 C=2: 0*16 + 1*4 + 2


def test_hidden_states_match_a_plain_forward_pass(tiny3: LoadedModel, windows: np.ndarray) -> None:
    enc = encode_windows(tiny3, windows)
    assert enc["input_ids"].shape == (12, 40)  # 38 tokens + [CLS] + [SEP]
    assert enc["special"][:, [0, -1]].all() and not enc["special"][:, 1:-1].any()
    with torch.inference_mode():
        ref = tiny3.model(
            input_ids=torch.from_numpy(enc["input_ids"]).long(), output_hidden_states=True
        ).hidden_states
    seq = hidden_states(tiny3, windows, layers=(0, -1), batch_size=5)
    tok = hidden_states(tiny3, windows, layers=(1,), level="token", batch_size=5)
    nuc = hidden_states(tiny3, windows, layers=(-1,), level="nucleotide")
    assert seq[0].shape == (12, 32) and seq[-1].dtype == np.float32
    np.testing.assert_allclose(seq[-1], ref[-1][:, 1:-1].mean(1).numpy(), atol=1e-5)
    np.testing.assert_allclose(seq[0], ref[0][:, 1:-1].mean(1).numpy(), atol=1e-5)
    np.testing.assert_allclose(tok[1], ref[1][:, 1:-1].numpy(), atol=1e-5)
    assert nuc[-1].shape == (12, 40, 32)
    np.testing.assert_allclose(nuc[-1][:, 0], ref[-1][:, 1].numpy(), atol=1e-5)
    np.testing.assert_allclose(nuc[-1][:, 2], ref[-1][:, 1:4].mean(1).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="level must be"):
        hidden_states(tiny3, windows, level="kmer")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(
    n_tok=st.integers(1, 12), k=st.integers(1, 6), stride=st.integers(1, 6), seed=st.integers(0, 99)
)
def test_tokens_to_nucleotides_matches_reference(
    n_tok: int, k: int, stride: int, seed: int
) -> None:
    states = np.random.default_rng(seed).normal(size=(2, n_tok, 3)).astype(np.float32)
    got = tokens_to_nucleotides(states, k, stride)
    for row in range(2):
        np.testing.assert_allclose(
            got[row], nucleotide_mean_reference(states[row], k, stride), atol=1e-5
        )


def test_embed_genome_tiles_every_kmer_once(tiny3: LoadedModel, tmp_path: Path) -> None:
    from dnakmer.data import phix174

    genome = Genome.open(phix174())
    out = tmp_path / "emb"
    manifest = embed_genome(tiny3, genome, out, layers=(0, -1), window_tokens=78, batch_size=64)
    arrays = load_arrays(out)
    n = manifest["n_samples"]
    length = genome.lengths[0]
    assert n == -(-(length - 2) // 78)  # 5,384 3-mers: 69 full windows and one of 2 tokens
    assert arrays["embedding"].shape == (n, 2, 32) and arrays["embedding"].dtype == np.float32
    start, end = arrays["start"], arrays["end"]
    assert start[0] == 0 and end[-1] == length
    assert (start[1:] == end[:-1] - 2).all()  # windows overlap by k-1 bases
    assert ((end - start - 2).sum()) == length - 2
    assert read_manifest(out)["kind"] == "dnakmer.embeddings"
    assert pl.read_parquet(out / "samples.parquet").height == n
    for i in (0, n - 1):
        name = genome.names[0]
        codes = genome.codes(name, int(start[i]), int(end[i]))[None]
        ref = hidden_states(tiny3, codes, layers=(0, -1))
        np.testing.assert_allclose(arrays["embedding"][i, 0], ref[0][0], atol=1e-5)
        np.testing.assert_allclose(arrays["embedding"][i, 1], ref[-1][0], atol=1e-5)
    assert end[-1] - start[-1] == 4


def test_embed_genome_token_and_nucleotide_levels(tiny3: LoadedModel, tmp_path: Path) -> None:
    from dnakmer.data import phix174

    genome = Genome.open(phix174())
    name = genome.names[0]
    for level, per_window in (("token", 78), ("nucleotide", 80)):
        embed_genome(tiny3, genome, tmp_path / level, level=level, window_tokens=78)
        arrays = load_arrays(tmp_path / level)
        assert arrays["embedding"].shape == (70, 1, per_window, 32)
        assert arrays["length"][0] == per_window and arrays["length"][-1] == (
            2 if level == "token" else 4
        )
        last = genome.codes(name, int(arrays["start"][-1]), int(arrays["end"][-1]))[None]
        ref = hidden_states(tiny3, last, level=level)[-1][0]
        n = int(arrays["length"][-1])
        np.testing.assert_allclose(arrays["embedding"][-1, 0, :n], ref, atol=1e-5)
        assert not arrays["embedding"][-1, 0, n:].any()  # zero padding


def test_disjoint_kmer_checkpoint_tiles_every_token_once(tiny3_dir: Path, tmp_path: Path) -> None:
    import shutil

    from dnakmer.data import phix174
    from dnakmer.models import load
    from dnakmer.probes.masked_tokens import mask_analysis

    folder = tmp_path / "disjoint"
    shutil.copytree(tiny3_dir, folder)
    (folder / "dnakmer.json").write_text('{"k": 3, "stride": 3}')
    loaded = load(folder, device="cpu")
    assert loaded.tokenizer.stride == 3
    genome = Genome.open(phix174())
    embed_genome(loaded, genome, tmp_path / "e", level="token", window_tokens=26)
    arrays = load_arrays(tmp_path / "e")
    assert arrays["embedding"].shape[2] == 26
    assert (arrays["end"] - arrays["start"])[0] == 78
    assert int(arrays["length"].sum()) == loaded.tokenizer.n_tokens(genome.lengths[0])
    with pytest.raises(ValueError, match="overlapping k-mers"):
        mask_analysis(loaded, genome, n_windows=2)


def test_embed_genome_writes_nothing_on_bad_input(
    tiny3: LoadedModel, lambda_genome: Genome, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"hidden states 0\.\.2"):
        embed_genome(tiny3, lambda_genome, tmp_path / "x", layers=(5,))
    with pytest.raises(ValueError, match=r"window_tokens must be 1\.\.78"):
        embed_genome(tiny3, lambda_genome, tmp_path / "x", window_tokens=200)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        embed_genome(tiny3, lambda_genome, tmp_path / "busy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]


def test_kmer_similarity_of_one_hot_embeddings_follows_hamming() -> None:
    k = 3
    one_hot = np.eye(4)[kmer_codes(k)].reshape(4**k, 4 * k)  # cosine = 1 - hamming / k
    table = kmer_similarity(one_hot, counts=np.arange(64), n_pairs=5000, seed=1)
    value = dict(zip(table["relation"], table["value"], strict=True))
    assert value["hamming_distance"] == pytest.approx(-1.0)
    assert value["shared_prefix"] > 0.3 and value["shared_suffix"] > 0.3
    # Random distinct pairs: expected matches (k-1 of 3 * 1/4 ... ) -> mean cosine near 0.25
    assert value["random_pairs"] == pytest.approx(0.25, abs=0.03)
    assert table.filter(pl.col("relation") == "reverse_complement_pairs")["n"][0] == 64


def test_kmer_similarity_of_nucleotides_leaves_out_constant_relations() -> None:
    import warnings

    emb = np.random.default_rng(2).normal(size=(4, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = kmer_similarity(emb, n_pairs=500, seed=0)
    # Distinct 1-mers always differ in their one base and share no prefix or suffix.
    assert set(table["relation"]) == {
        "gc_difference",
        "reverse_complement_pairs",
        "random_pairs",
    }
    assert table["value"].is_finite().all()


def test_projection_and_colourings() -> None:
    emb = np.random.default_rng(0).normal(size=(64, 8))
    xy = project(emb)
    assert xy.shape == (64, 2) and xy.dtype == np.float32
    colours = kmer_colourings(3)
    assert colours["nt 0"][16] == 1 and colours["GC fraction"][63] == 1.0
    with pytest.raises(ValueError, match="'pca' or 'umap'"):
        project(emb, "tsne")


def test_strand_consistency_is_exact_on_reverse_complement_palindromes(
    tiny3: LoadedModel, windows: np.ndarray
) -> None:
    half = windows[:, :20]
    palindromes = np.concatenate([half, reverse_complement_codes(half)], axis=1)
    table = strand_consistency(tiny3, palindromes)
    assert table.height == 12
    # A reverse-complement palindrome is its own reverse complement: identical input.
    np.testing.assert_allclose(table["cosine_rc"], 1.0, atol=1e-6)
    # Agreeing predictions are both right or both wrong.
    agree = table.filter(pl.col("agree"))
    assert (agree["fwd_correct"] == agree["rc_correct"]).all()
    general = strand_consistency(tiny3, windows)
    assert (general["cosine_rc"] <= 1 + 1e-6).all() and (general["cosine_rc"] < 1 - 1e-6).any()


def test_linear_probes_read_identity_at_layer_zero(
    tiny3: LoadedModel, lambda_genome: Genome
) -> None:
    codes = sample_windows(lambda_genome, 64, 40, seed=4).codes
    table = linear_probes(tiny3, codes, max_distance=3, tokens_per_window=8, seed=0)
    assert table.height == 3 * (3 + 2 * 3)
    assert set(table["layer"]) == {0, 1, 2}
    layer0 = table.filter(pl.col("layer") == 0)
    own = layer0.filter(pl.col("target") == "own")["accuracy"].mean()
    outside = layer0.filter(pl.col("target") != "own")["accuracy"].mean()
    # The layer-0 state is the token's own embedding: its bases are linearly readable,
    # bases outside it are not (beyond genome statistics).
    chance = layer0["chance"].mean()
    assert own > chance + 0.25
    assert abs(outside - chance) < 0.08
    assert ((table["chance"] > 0.15) & (table["chance"] < 0.5)).all()


def run_cli(args: list[str]) -> None:
    """``dnakmer ARGS`` in process; a zero exit (standalone click mode) is success."""
    from dnakmer.cli import main

    try:
        main(args)
    except SystemExit as e:
        if e.code not in (0, None):
            raise


def test_cli_embed_and_probe_embeddings(tiny3_dir: Path, tmp_path: Path) -> None:
    from dnakmer.data import phix174

    run_cli(
        [
            "embed",
            "--model",
            str(tiny3_dir),
            "--out",
            str(tmp_path / "e"),
            "--layers",
            "0,-1",
            str(phix174()),
            "--device",
            "cpu",
        ]
    )
    assert load_arrays(tmp_path / "e")["embedding"].shape[1:] == (2, 32)
    run_cli(
        [
            "probe",
            "embeddings",
            "--model",
            str(tiny3_dir),
            "--out",
            str(tmp_path / "p"),
            "-n",
            "8",
            "--window-tokens",
            "24",
            "--max-distance",
            "2",
            "--device",
            "cpu",
            str(phix174()),
        ]
    )
    rep = tmp_path / "p"
    names = sorted(p.name for p in rep.iterdir())
    assert names == [
        "kmer_similarity.csv",
        "kmer_similarity_random_init.csv",
        "probe_curves.png",
        "probes.csv",
        "projection_pca.png",
        "strand.parquet",
        "summary.json",
    ]
    summary = json.loads((rep / "summary.json").read_text())
    assert 0 <= summary["strand"]["agree"] <= 1
    assert summary["n_kmers"] == 4**3
    # The untrained control is another set of weights than the model's.
    rho = {r["relation"]: r["value"] for r in summary["kmer_similarity"]}
    rho_c = {r["relation"]: r["value"] for r in summary["kmer_similarity_random_init"]}
    assert set(rho) == set(rho_c) and rho["random_pairs"] != rho_c["random_pairs"]
    assert len(summary["probes"]) == 3 * (3 + 2 * 2)
    assert (rep / "probe_curves.png").read_bytes()[:4] == b"\x89PNG"
