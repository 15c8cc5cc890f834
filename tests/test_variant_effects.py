"""Variant effects: the batched zero-shot scores and region scans against a brute-force
reference (tests/variant_reference.py), the two masks on E. coli, the reference check of
every VCF allele, regions, and the windows around positions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnakmer import Genome
from dnakmer.data import demo_genome, demo_models_dir, example_genome
from dnakmer.datasets.variants import Region, check_variants, parse_region, windows_around
from dnakmer.exceptions import RecordNotFoundError
from variant_reference import naive_scan, random_snvs, zero_shot

MODELS = ("overlapping-6mer", "nucleotide", "nonoverlapping-6mer", "bpe")
RTOL_P = 1e-4  # relative, on probabilities
ATOL_SCORE = 1e-4  # absolute, on ln P(alt) - ln P(ref)


@pytest.fixture(scope="session")
def ecoli() -> Genome:
    return Genome.open(demo_genome())


@pytest.fixture(scope="session")
def demo_model() -> Callable[[str], object]:
    """A shipped demo model by folder name, each loaded once."""
    from dnakmer.models import load

    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = load(demo_models_dir() / name, device="cpu")
        return cache[name]

    return get


@pytest.fixture(scope="session")
def short_record(tmp_path_factory: pytest.TempPathFactory, ecoli: Genome) -> Genome:
    """One record of 60 E. coli bases: shorter than every demo model's window."""
    path = tmp_path_factory.mktemp("short") / "short.fa"
    path.write_text(">short\n" + ecoli.fetch(ecoli.names[0], 200_000, 200_060) + "\n")
    return Genome.open(path)


@pytest.fixture(scope="session")
def genomes(ecoli: Genome, lambda_genome: Genome, short_record: Genome) -> dict[str, Genome]:
    return {"ecoli": ecoli, "lambda": lambda_genome, "short": short_record}


def context_for(name: str, mask: str) -> str:
    """The naive loop writes each alternative into its own window; the batched scores
    read the reference's window, which is the same input only where the masked tokens
    are all that hold the base (see tests/variant_reference.py)."""
    return "ref" if name == "bpe" or mask == "single" else "alt"


# -- agreement with the brute-force reference ----------------------------------------


SNV_CASES = {"ecoli": (24, 4), "lambda": (8, 3), "short": (6, 2)}  # (random, at each end)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("genome_name", list(SNV_CASES))
def test_score_variants_equals_brute_force(
    name: str, genome_name: str, demo_model, genomes: dict[str, Genome]
) -> None:
    from dnakmer.probes.variant_effects import default_window, score_variants

    loaded = demo_model(name)
    g = genomes[genome_name]
    n, edge = SNV_CASES[genome_name]
    snvs = random_snvs(g, n, seed=len(name) + n, edge=edge)
    window = default_window(loaded)
    table = score_variants(loaded, g, snvs, window=window).table
    assert table.height == snvs.height and (table["status"] == "scored").all()
    folder = demo_models_dir() / name
    for mask, prefix in (("tokens", ""), ("single", "single_")):
        for row in table.iter_rows(named=True):
            want = zero_shot(
                folder, g, row["chrom"], row["pos"], row["ref"], row["alt"],
                window=window, mask=mask, context=context_for(name, mask),
            )  # fmt: skip
            got = [row[f"{prefix}p_{b}"] for b in "acgt"]
            where = f"{name} {mask} {genome_name}:{row['pos']}"
            np.testing.assert_allclose(got, want["p"], rtol=RTOL_P, atol=1e-12, err_msg=where)
            assert row[f"{prefix}score"] == pytest.approx(want["score"], abs=ATOL_SCORE), where
            if mask == "tokens":
                assert row["tokens_masked"] == want["tokens_masked"], where


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(("genome_name", "start", "end"), [("ecoli", 0, 8), ("lambda", -8, None)])
def test_scan_region_equals_brute_force(
    name: str, genome_name: str, start: int, end: int | None, demo_model, genomes
) -> None:
    from dnakmer.probes.variant_effects import default_window, scan_region

    loaded = demo_model(name)
    g = genomes[genome_name]
    chrom, length = g.names[0], g.lengths[0]
    lo, hi = start % length, length if end is None else end
    window = default_window(loaded)
    result = scan_region(loaded, g, Region(chrom, lo, hi), window=window)
    want = naive_scan(
        demo_models_dir() / name, g, chrom, lo, hi, window=window,
        context=context_for(name, "tokens"),
    )  # fmt: skip
    assert result.scores.shape == (hi - lo, 4)
    np.testing.assert_allclose(result.scores, want, atol=ATOL_SCORE, rtol=0)
    assert result.table.height == 3 * (hi - lo)


# -- the two masks on E. coli ------------------------------------------------------------


@pytest.fixture
def one_torch_thread():
    """A second intra-op thread waiting for a core that another job holds slows such a
    small model down (12 s against 16 s here for the 2,000 SNVs below)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_torch_thread")
def test_every_covering_token_tracks_markov_single_token_does_not(ecoli, demo_model) -> None:
    """Measured (2,000 SNVs, seed 0): every covering token masked, Spearman with the
    Markov log-ratio 0.73 [0.71, 0.75], mean P(ref) 0.29; the single-token mask 0.13
    [0.09, 0.17], mean P(ref) 1.00 (the unmasked neighbours spell the reference)."""
    from dnakmer.probes.variant_effects import score_variants

    snvs = random_snvs(ecoli, 2000, seed=0)
    summary = score_variants(demo_model("overlapping-6mer"), ecoli, snvs).summary()
    tokens, single = summary["masks"]["tokens"], summary["masks"]["single"]
    assert tokens["markov_spearman"]["n"] == single["markov_spearman"]["n"] == 2000
    t_lo, _ = tokens["markov_spearman"]["ci95"]
    _, s_hi = single["markov_spearman"]["ci95"]
    assert t_lo > 0.5
    assert s_hi < t_lo
    assert abs(single["markov_spearman"]["rho"]) < 0.3
    assert single["mean_p_ref"] > 0.95
    assert tokens["mean_p_ref"] < 0.5


# -- every allele checked ------------------------------------------------------------------

TINY = "ACGTNACGTTGCAacgtACGTAC"  # base 5 is N, bases 14-17 soft-masked

CHECK_ROWS = [
    # chrom, pos, ref, alt, then per allele: (status, reason kind or None)
    ("chr1", 1, "A", "C", [("scored", None)]),
    ("chr1", 1, "G", "C", [("skipped", "REF does not match the genome")]),
    ("chr1", 2, "C", "A,T", [("scored", None), ("scored", None)]),
    ("chr1", 3, "G", "GA", [("skipped", "indel")]),
    ("chr1", 3, "GT", "G", [("skipped", "indel")]),
    ("chr1", 3, "GT", "CA", [("skipped", "multi-nucleotide substitution")]),
    ("chr1", 4, "T", "<DEL>", [("skipped", "symbolic or breakend allele")]),
    ("chr1", 4, "T", "*", [("skipped", "spanning-deletion allele")]),
    ("chr1", 4, "T", ".", [("skipped", "no alternative allele")]),
    ("chr1", 4, "T", "G,<DEL>", [("scored", None), ("skipped", "symbolic or breakend allele")]),
    ("chrX", 4, "T", "G", [("skipped", "record not in the genome")]),
    ("chr1", len(TINY) + 1, "A", "G", [("skipped", "position outside the record")]),
    ("chr1", 0, "A", "G", [("skipped", "position outside the record")]),
    ("chr1", 5, "N", "A", [("skipped", "reference base not A, C, G or T")]),
    ("chr1", 5, "A", "C", [("skipped", "REF does not match the genome")]),
    ("chr1", 6, "a", "g", [("scored", None)]),
    ("chr1", 14, "a", "t", [("scored", None)]),
    ("chr1", 6, "A", "A", [("skipped", "ALT equals REF")]),
    ("chr1", 6, "A", "N", [("skipped", "ALT not A, C, G or T")]),
]


@pytest.fixture(scope="module")
def tiny_genome(tmp_path_factory: pytest.TempPathFactory) -> Genome:
    path = tmp_path_factory.mktemp("tiny") / "tiny.fa"
    path.write_text(f">chr1\n{TINY}\n>chr2\nACGTACGTAC\n")
    return Genome.open(path)


def _check_table() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "chrom": [r[0] for r in CHECK_ROWS],
            "pos": [r[1] for r in CHECK_ROWS],
            "ref": [r[2] for r in CHECK_ROWS],
            "alt": [r[3] for r in CHECK_ROWS],
        }
    )


def _expected() -> list[tuple[int, int, str, str | None]]:
    return [
        (line, allele, status, kind)
        for line, row in enumerate(CHECK_ROWS, start=1)
        for allele, (status, kind) in enumerate(row[4], start=1)
    ]


def test_check_variants_reasons(tiny_genome: Genome) -> None:
    checked = check_variants(tiny_genome, _check_table())
    got = [
        (r["line"], r["allele"], r["status"], r["reason"] and r["reason"].split(":")[0])
        for r in checked.iter_rows(named=True)
    ]
    assert got == _expected()
    by_line = {r["line"]: r for r in checked.iter_rows(named=True) if r["allele"] == 1}
    assert by_line[3]["n_alleles"] == 2
    assert by_line[16]["ref"] == "a" and by_line[16]["alt"] == "G"
    assert by_line[16]["genome_ref"] == "A" and by_line[16]["ref_match"]
    assert by_line[14]["genome_ref"] == "N"
    assert by_line[11]["genome_ref"] is None and by_line[12]["genome_ref"] is None


def test_score_variants_keeps_every_allele(tiny_genome: Genome, demo_model) -> None:
    from dnakmer.probes.variant_effects import score_variants

    table = score_variants(demo_model("nucleotide"), tiny_genome, _check_table(), max_order=1).table
    assert [
        (r["line"], r["allele"], r["status"], r["reason"] and r["reason"].split(":")[0])
        for r in table.iter_rows(named=True)
    ] == _expected()
    scored = table["status"] == "scored"
    for column in ("score", "single_score", "p_ref", "p_alt", "tokens_masked"):
        assert table.filter(scored)[column].is_not_null().all(), column
        assert table.filter(~scored)[column].is_null().all(), column
    lower = table.filter(pl.col("line") == 16).row(0, named=True)
    upper = score_variants(
        demo_model("nucleotide"),
        tiny_genome,
        pl.DataFrame({"chrom": ["chr1"], "pos": [6], "ref": ["A"], "alt": ["G"]}),
        max_order=1,
    ).table.row(0, named=True)
    assert lower["score"] == pytest.approx(upper["score"], abs=1e-9)


# -- regions ---------------------------------------------------------------------------------


def test_parse_region_good_forms(tiny_genome: Genome, lambda_genome: Genome) -> None:
    assert parse_region("chr1", tiny_genome) == Region("chr1", 0, len(TINY))
    assert parse_region("chr2:3-7", tiny_genome) == Region("chr2", 2, 7)
    lam = lambda_genome.names[0]  # "gi|9626243|ref|NC_001416.1|"
    region = parse_region(f"{lam}:1,001-2,000", lambda_genome)
    assert region == Region(lam, 1000, 2000) and len(region) == 1000
    assert str(region) == f"{lam}:1001-2000"
    assert parse_region(lam, lambda_genome) == Region(lam, 0, 48_502)
    assert parse_region(f"{lam}:48,502-48,502", lambda_genome) == Region(lam, 48_501, 48_502)


def test_parse_region_names_with_colons(tmp_path: Path) -> None:
    path = tmp_path / "colon.fa"
    path.write_text(">HLA:01\nACGTACGTAC\n")
    g = Genome.open(path)
    assert parse_region("HLA:01", g) == Region("HLA:01", 0, 10)
    assert parse_region("HLA:01:2-4", g) == Region("HLA:01", 1, 4)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("chrX", RecordNotFoundError),
        ("chrX:1-10", RecordNotFoundError),
        ("chr1:0-10", ValueError),
        ("chr1:10-5", ValueError),
        ("chr1:1-24", ValueError),
        ("chr1:a-b", ValueError),
        ("chr1:5", ValueError),
        ("chr1:-3-5", ValueError),
        ("chr1:", ValueError),
    ],
)
def test_parse_region_bad_forms(text: str, error: type[Exception], tiny_genome: Genome) -> None:
    with pytest.raises(error) as info:
        parse_region(text, tiny_genome)
    if error is ValueError:
        assert not isinstance(info.value, RecordNotFoundError)


# -- windows around positions ----------------------------------------------------------------


@pytest.fixture(scope="module")
def window_genome(tmp_path_factory: pytest.TempPathFactory) -> Genome:
    """Records of 1, 5, 37 and 400 bases and the lambda genome."""
    rng = np.random.default_rng(3)
    path = tmp_path_factory.mktemp("windows") / "w.fa"
    parts = [f">r{n}\n{''.join(rng.choice(list('ACGTN'), size=n))}\n" for n in (1, 5, 37, 400)]
    lam = Genome.open(example_genome())
    parts.append(f">lambda\n{lam.fetch(lam.names[0])}\n")
    path.write_text("".join(parts))
    return Genome.open(path)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), length=st.integers(1, 600))
def test_windows_around_contain_the_position(window_genome: Genome, data, length: int) -> None:
    chrom = data.draw(st.sampled_from(window_genome.names))
    record = window_genome.lengths[window_genome.names.index(chrom)]
    pos0 = np.array(data.draw(st.lists(st.integers(0, record - 1), min_size=1, max_size=8)))
    codes, offset = windows_around(window_genome, chrom, pos0, length)
    width = min(length, record)
    assert codes.shape == (len(pos0), width) and codes.dtype == np.uint8
    start = pos0 - offset
    assert ((offset >= 0) & (offset < width)).all()
    assert ((start >= 0) & (start + width <= record)).all()
    for i in range(len(pos0)):
        np.testing.assert_array_equal(
            codes[i], window_genome.codes(chrom, int(start[i]), int(start[i]) + width)
        )
        # Centred unless the record's ends push the window.
        if width // 2 <= pos0[i] <= record - width + width // 2:
            assert offset[i] == width // 2


# -- edge cases found while writing the reference ------------------------------------------


def test_bpe_spans_of_a_window_with_an_n(ecoli: Genome, demo_model) -> None:
    from dnakmer.probes.masked_bases import token_base_spans

    loaded = demo_model("bpe")
    codes = ecoli.codes(ecoli.names[0], 100_000, 100_200).copy()
    codes[50] = 4
    encoded = loaded.encoder.encode(codes[None, :])
    spans = token_base_spans(loaded, encoded.input_ids, encoded.attention_mask)
    assert spans[0, :, 1].max() == len(codes)


def test_nonoverlapping_variant_at_an_uncovered_record_end(lambda_genome, demo_model) -> None:
    from dnakmer.probes.variant_effects import scan_region, score_variants

    chrom, length = lambda_genome.names[0], lambda_genome.lengths[0]
    ref = "ATCG"[lambda_genome.codes(chrom, length - 1)[0]]
    snv = pl.DataFrame(
        {"chrom": [chrom], "pos": [length], "ref": [ref], "alt": ["C" if ref != "C" else "G"]}
    )
    model = demo_model("nonoverlapping-6mer")
    table = score_variants(model, lambda_genome, snv, window=100).table
    assert table["status"].to_list() == ["skipped"]
    assert table["reason"][0].startswith("no token covers the position")
    scan = scan_region(model, lambda_genome, f"{chrom}:{length - 9}-{length}", window=100)
    assert scan.summary()["uncovered"] == 100 % 6 and scan.summary()["scored"] == 10 - 100 % 6
    assert scan.table["position"].max() == length - 100 % 6


def test_a_bpe_window_with_an_n_is_scored_or_skipped_never_misplaced(
    ecoli: Genome, demo_model, tmp_path: Path
) -> None:
    from dnakmer.probes.variant_effects import UNSPELLED, base_probabilities, score_variants

    loaded = demo_model("bpe")
    codes = ecoli.codes(ecoli.names[0], 100_000, 100_200).copy()
    clean = base_probabilities(loaded, codes[None, :], np.array([150]))[0]
    codes[50] = 4
    with_n, covering = base_probabilities(loaded, codes[None, :], np.array([150]))
    assert covering[0] >= 1
    # the N is one [UNK]: the spans still reach the window's end, and the base far from
    # the N is read from the same masked slot as without it
    assert np.isfinite(with_n).all() and np.abs(with_n[0] - clean[0]).max() < 0.2
    # a WordPiece-like [UNK] over several bases: the row is refused, not misplaced
    name = ecoli.names[0]
    seq = ecoli.fetch(name, 0, 300).upper()
    fasta = tmp_path / "n.fa"
    fasta.write_text(f">{name}\n{seq[:100]}NNNNNNNNNNNN{seq[112:]}\n")
    genome = Genome.open(fasta)
    snv = pl.DataFrame({"chrom": [name], "pos": [150], "ref": [seq[149]],
                        "alt": ["A" if seq[149] != "A" else "C"]})  # fmt: skip
    table = score_variants(loaded, genome, snv, window=200).table
    assert table["status"][0] == "scored" or table["reason"][0] == UNSPELLED


def test_window_lengths_below_one_are_refused(lambda_genome, demo_model) -> None:
    from dnakmer.probes.variant_effects import scan_region, score_variants

    model = demo_model("nucleotide")
    chrom = lambda_genome.names[0]
    snv = pl.DataFrame({"chrom": [chrom], "pos": [100], "ref": ["A"], "alt": ["C"]})
    for window in (0, -5):
        with pytest.raises(ValueError, match="at least 1 base"):
            score_variants(model, lambda_genome, snv, window=window)
        with pytest.raises(ValueError, match="at least 1 base"):
            scan_region(model, lambda_genome, f"{chrom}:1-5", window=window)


def test_the_bpe_default_window_holds_about_the_tokens_it_was_trained_on(
    ecoli: Genome, demo_model
) -> None:
    from dnakmer.datasets.windows import sample_windows
    from dnakmer.probes.variant_effects import default_window

    loaded = demo_model("bpe")
    window = default_window(loaded, ecoli)
    assert window < 283
    codes = sample_windows(ecoli, 64, window, seed=1).codes
    tokens = np.median(loaded.encoder.encode(codes).lengths - 2)
    assert 58 <= tokens <= 68
