"""Masked-token analysis: visibility, the neighbour rule, marginals, shuffles, and a
model that copies its neighbours scoring exactly like the rule."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dnakmer import Genome, KmerTokenizer
from dnakmer.datasets.windows import (
    dinucleotide_shuffle,
    genome_kmer_counts,
    kmer_codes,
    kmer_index,
    sample_windows,
)
from dnakmer.models import LoadedModel
from dnakmer.probes.masked_tokens import (
    _base_marginals,
    _rank_of,
    mask_analysis,
    neighbour_rule_scores,
    parse_scheme,
    shuffle_windows,
    visible_nucleotides,
)
from probe_reference import (
    dinucleotide_counts,
    kmer_index_reference,
    marginals_reference,
    rule_reference,
    visible_reference,
)

CODE = {b: i for i, b in enumerate("ATCG")}


def codes_of(seq: str) -> np.ndarray:
    return np.array([CODE[b] for b in seq], dtype=np.uint8)


# --- visibility and the rule, exactly -------------------------------------------------


def test_dnabert_span_hides_exactly_one_nucleotide_for_k6() -> None:
    scheme = parse_scheme("dnabert", 6)
    assert (scheme.span, scheme.anchor) == (6, -2)  # centre c masks c-2 ... c+3
    n_tokens, centre = 20, 10
    masked = np.zeros(n_tokens, dtype=bool)
    masked[centre - 2 : centre + 4] = True
    vis = visible_nucleotides(masked, 6)
    assert vis.shape == (25,)
    # Nucleotide c+3 is covered by tokens c-2 ... c+3 only: all masked.
    assert np.flatnonzero(~vis).tolist() == [centre + 3]
    for t in range(centre - 2, centre + 4):
        token_vis = vis[t : t + 6]
        assert token_vis.sum() == 5 and not token_vis[centre + 3 - t]


def test_single_token_mask_hides_nothing_and_long_span_hides_span_minus_k_plus_one() -> None:
    masked = np.zeros(30, dtype=bool)
    masked[12] = True
    assert visible_nucleotides(masked, 6).all()
    masked[12:22] = True  # 10 tokens
    assert np.flatnonzero(~visible_nucleotides(masked, 6)).tolist() == [17, 18, 19, 20, 21]


@settings(max_examples=200, deadline=None)
@given(masked=st.lists(st.booleans(), min_size=1, max_size=40), k=st.integers(1, 7))
def test_visibility_matches_reference(masked: list[bool], k: int) -> None:
    got = visible_nucleotides(np.array(masked), k)
    assert got.tolist() == visible_reference(masked, k)


@settings(max_examples=60, deadline=None)
@given(
    seq=st.text(alphabet="ATCG", min_size=3, max_size=3),
    visible=st.lists(st.booleans(), min_size=3, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_rule_matches_reference(seq: str, visible: list[bool], seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 5, size=64)  # small counts: ties happen
    by_kmer = {
        "".join(p): int(counts[i]) for i, p in enumerate(itertools.product("ATCG", repeat=3))
    }
    scores = neighbour_rule_scores(codes_of(seq)[None], np.array([visible]), np.log(counts + 1.0))
    best = int(scores[0].argmax())
    assert best == kmer_index_reference(rule_reference(seq, visible, by_kmer))
    assert np.isfinite(scores[0]).sum() == 4 ** (3 - sum(visible))


def test_rule_hand_case_fills_hidden_base_by_prior() -> None:
    prior = np.zeros(64)
    prior[kmer_index_reference("ACG")] = 5.0
    prior[kmer_index_reference("ACT")] = 7.0
    prior[kmer_index_reference("TCT")] = 9.0  # inconsistent with the visible A
    scores = neighbour_rule_scores(codes_of("ACA")[None], np.array([[True, True, False]]), prior)
    assert int(scores[0].argmax()) == kmer_index_reference("ACT")
    assert np.isneginf(scores[0, kmer_index_reference("TCT")])


@settings(max_examples=60, deadline=None)
@given(
    scores=st.lists(st.integers(-3, 3), min_size=2, max_size=12),
    data=st.data(),
)
def test_rank_breaks_ties_like_argmax(scores: list[int], data: st.DataObject) -> None:
    arr = np.array([scores], dtype=np.float32)
    true = data.draw(st.integers(0, len(scores) - 1))
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))  # stable, as argmax
    assert _rank_of(arr, np.array([true]))[0] == order.index(true)


# --- k-mer bookkeeping, marginals, shuffles --------------------------------------------


@settings(max_examples=50, deadline=None)
@given(seq=st.text(alphabet="ATCG", min_size=4, max_size=30), k=st.integers(1, 4))
def test_kmer_index_matches_reference_and_rust_tokenizer(seq: str, k: int) -> None:
    got = kmer_index(codes_of(seq), k)
    assert got.tolist() == [kmer_index_reference(seq[i : i + k]) for i in range(len(seq) - k + 1)]
    tok = KmerTokenizer(k)
    assert (np.asarray(tok.id_to_kmer_index)[tok.encode(seq)] == got).all()
    assert "".join("ATCG"[c] for c in kmer_codes(k)[got[0]]) == seq[:k]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(1, 4))
def test_base_marginals_match_reference(seed: int, k: int) -> None:
    probs = np.random.default_rng(seed).dirichlet(np.ones(4**k), size=2).astype(np.float32)
    got = _base_marginals(probs, k)
    for row in range(2):
        np.testing.assert_allclose(got[row], marginals_reference(probs[row], k), atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=2), 1.0, atol=1e-5)


@settings(max_examples=100, deadline=None)
@given(seq=st.lists(st.integers(0, 3), min_size=0, max_size=80), seed=st.integers(0, 2**16))
def test_dinucleotide_shuffle_keeps_dinucleotides_and_ends(seq: list[int], seed: int) -> None:
    arr = np.array(seq, dtype=np.uint8)
    out = dinucleotide_shuffle(arr, np.random.default_rng(seed))
    assert out.dtype == np.uint8 and len(out) == len(arr)
    if len(arr) >= 2:
        assert (dinucleotide_counts(out) == dinucleotide_counts(arr)).all()
        assert out[0] == arr[0] and out[-1] == arr[-1]


def test_shuffles_are_seeded_and_keep_composition(lambda_genome: Genome) -> None:
    w = sample_windows(lambda_genome, 6, 120, seed=3)
    for control in ("mono", "di"):
        a = shuffle_windows(w.codes, control, 7)
        assert (a == shuffle_windows(w.codes, control, 7)).all()
        assert (a != w.codes).any()
        for row, orig in zip(a, w.codes, strict=True):
            assert (np.bincount(row, minlength=4) == np.bincount(orig, minlength=4)).all()
    with pytest.raises(ValueError, match="unknown control"):
        shuffle_windows(w.codes, "reverse", 0)


def test_sample_windows_are_n_free_seeded_and_located(tmp_path: Path) -> None:
    fasta = tmp_path / "n.fa"
    fasta.write_text(">a\nACGTACGTNNNNACGTACGTACGTAC\n>b\nNNNNACGTAA\n")
    g = Genome.open(fasta)
    w = sample_windows(g, 50, 10, seed=1)
    assert w.codes.shape == (50, 10) and w.codes.dtype == np.uint8 and w.codes.max() < 4
    assert set(w.record.tolist()) == {0}
    assert set(w.start.tolist()) <= set(range(12, 17))
    for codes, r, s in zip(w.codes, w.record, w.start, strict=True):
        assert "".join("ATCG"[c] for c in codes) == g.fetch(g.names[r], int(s), int(s) + 10)
    assert (sample_windows(g, 50, 10, seed=1).start == w.start).all()
    with pytest.raises(ValueError, match="no N-free stretch of 15 bases"):
        sample_windows(g, 5, 15)


def test_parse_scheme() -> None:
    assert parse_scheme("single", 6).span == 1
    assert parse_scheme("span:10", 6).span == 10
    with pytest.raises(ValueError, match="unknown masking scheme"):
        parse_scheme("span:x", 6)


# --- the analysis on models -------------------------------------------------------------


class NeighbourCopyMLM(torch.nn.Module):
    """A masked LM that knows only the overlap rule: at each [MASK] it reads the bases
    that unmasked tokens in its input show, and ranks the k-mers agreeing with them by
    genome frequency. It sees token ids, never the hidden sequence."""

    def __init__(self, tok: KmerTokenizer, log_prior: np.ndarray) -> None:
        super().__init__()
        self.k, self.tok = tok.k, tok
        self.table = kmer_codes(tok.k).astype(np.int64)
        self.log_prior = log_prior
        self.config = SimpleNamespace(max_position_embeddings=512, num_hidden_layers=0)

    def get_output_embeddings(self) -> torch.nn.Module:
        return torch.nn.Identity()

    def forward(self, input_ids: torch.Tensor, **_: object) -> SimpleNamespace:
        to_index = np.asarray(self.tok.id_to_kmer_index)
        kmer_ids = np.asarray(self.tok.kmer_ids)
        logits = np.full((*input_ids.shape, self.tok.vocab_size), -1e4, dtype=np.float32)
        for b, row in enumerate(input_ids.numpy()[:, 1:-1]):
            known = np.full(len(row) + self.k - 1, -1)
            for t, token in enumerate(row):
                if token != self.tok.mask_token_id:
                    known[t : t + self.k] = self.table[to_index[token]]
            for t in np.flatnonzero(row == self.tok.mask_token_id):
                pattern = known[t : t + self.k]
                ok = np.all((self.table == pattern) | (pattern < 0), axis=1)
                logits[b, t + 1, kmer_ids[ok]] = self.log_prior[ok]
        return SimpleNamespace(logits=torch.from_numpy(logits))


@pytest.fixture(scope="module")
def copy_model(lambda_genome: Genome) -> LoadedModel:
    tok = KmerTokenizer(3)
    prior = np.log(genome_kmer_counts(lambda_genome, 3) + 1.0)
    return LoadedModel(
        model=NeighbourCopyMLM(tok, prior), tokenizer=tok, device=torch.device("cpu")
    )


def test_model_that_copies_neighbours_scores_like_the_rule(
    copy_model: LoadedModel, lambda_genome: Genome
) -> None:
    result = mask_analysis(
        copy_model,
        lambda_genome,
        schemes=("dnabert", "single", "span:6"),
        controls=("none", "di"),
        n_windows=24,
        window_tokens=24,
        seed=5,
    )
    t = result.tokens
    assert t.height == 24 * (3 + 1 + 6) * 2
    assert t["agree"].all() and t["consistent"].all()
    assert (t["model_rank"] == t["rule_rank"]).all()
    s = result.summary().sort("scheme", "control")
    np.testing.assert_allclose(s["model_top1"], s["rule_top1"])
    np.testing.assert_allclose(s["agreement"], 1.0)
    # Every visible base is recovered exactly; single-token masks are fully determined.
    np.testing.assert_allclose(s["nt_acc_visible"], 1.0)
    single = t.filter(pl.col("scheme") == "single")
    assert (single["rule_rank"] == 0).all() and (single["n_visible"] == 3).all()
    dnabert = t.filter(pl.col("scheme") == "dnabert")
    assert (dnabert["n_visible"] == 2).all() and (dnabert["n_hidden"] == 1).all()
    assert sorted(dnabert["span_pos"].unique().to_list()) == [0, 1, 2]
    # span of 6 tokens, k = 3: 4 hidden bases, covered by 1, 2, 3, 3, 2, 1 tokens.
    span6 = t.filter(
        (pl.col("scheme") == "span:6") & (pl.col("window") == 0) & (pl.col("control") == "none")
    )
    assert span6.sort("span_pos")["n_hidden"].to_list() == [1, 2, 3, 3, 2, 1]


def test_mask_analysis_on_tiny_bert_is_deterministic_and_saves(
    tiny3: LoadedModel, lambda_genome: Genome, tmp_path: Path
) -> None:
    kwargs = {"schemes": ("dnabert", "span:4"), "n_windows": 16, "window_tokens": 32, "seed": 2}
    a = mask_analysis(tiny3, lambda_genome, **kwargs)
    b = mask_analysis(tiny3, lambda_genome, **kwargs)
    assert a.tokens.equals(b.tokens)
    t = a.tokens
    assert set(t["control"].unique()) == {"none", "mono", "di"}
    assert t["model_rank"].min() >= 0 and t["model_rank"].max() < 64
    assert ((t["model_p_true"] > 0) & (t["model_p_true"] < 1)).all()
    key = "dnabert_none"
    np.testing.assert_allclose(a.marginals[key].sum(axis=2), 1.0, atol=1e-5)
    assert a.marginals[key].shape == (16 * 3, 3, 4)
    out = a.save(tmp_path / "mask")
    summary = json.loads((out / "summary.json").read_text())
    assert {r["scheme"] for r in summary["overall"]} == {"dnabert", "span:4"}
    assert pl.read_parquet(out / "tokens.parquet").equals(t)
    for png in ("accuracy_by_span_position.png", "model_vs_rule.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert np.load(out / "marginals_span4_di.npy").shape == (16 * 4, 3, 4)


def test_mask_analysis_rejects_bad_arguments(tiny3: LoadedModel, lambda_genome: Genome) -> None:
    with pytest.raises(ValueError, match="too short"):
        mask_analysis(tiny3, lambda_genome, schemes=("span:20",), window_tokens=24, n_windows=2)
    with pytest.raises(ValueError, match="unknown control"):
        mask_analysis(tiny3, lambda_genome, controls=("none", "shuffled"), n_windows=2)
    with pytest.raises(ValueError, match="exceeds the model's 80 positions"):
        mask_analysis(tiny3, lambda_genome, window_tokens=100, n_windows=2)


@pytest.mark.gpu
def test_mask_analysis_on_gpu_matches_cpu(tiny3_dir: Path, lambda_genome: Genome) -> None:
    from dnakmer.models import load

    kwargs = {"schemes": ("single",), "controls": ("none",), "n_windows": 32, "seed": 4}
    cpu = mask_analysis(load(tiny3_dir, device="cpu"), lambda_genome, **kwargs).tokens
    gpu = mask_analysis(load(tiny3_dir, device="cuda"), lambda_genome, **kwargs).tokens
    assert gpu["model_p_true"].is_finite().all()
    # bf16 autocast may swap near-tied k-mers; most top-1 predictions must agree.
    assert (cpu["model_top1"] == gpu["model_top1"]).mean() > 0.8


def run_cli(args: list[str]) -> None:
    """``dnakmer ARGS`` in process; a zero exit (standalone click mode) is success."""
    from dnakmer.cli import main

    try:
        main(args)
    except SystemExit as e:
        if e.code not in (0, None):
            raise


def test_cli_probe_mask(tiny3_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from dnakmer.cli import main

    out = tmp_path / "mask"
    args = [
        "probe",
        "mask",
        "--model",
        str(tiny3_dir),
        "--out",
        str(out),
        "-n",
        "8",
        "--scheme",
        "single",
        "--control",
        "none",
        "--window-tokens",
        "20",
        "--device",
        "cpu",
    ]
    run_cli(args)
    assert "wrote" in capsys.readouterr().out
    rows = json.loads((out / "summary.json").read_text())["overall"]
    assert [(r["scheme"], r["control"], r["n"]) for r in rows] == [("single", "none", 8)]
    with pytest.raises(SystemExit) as info:
        main(["probe", "mask", "--model", str(tmp_path / "nope"), "--out", str(out)])
    assert info.value.code == 1
    assert "No such checkpoint folder" in capsys.readouterr().err
