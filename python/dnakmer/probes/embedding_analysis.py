"""What embeddings represent: similarity structure of the static k-mer embeddings,
2-D projections, strand consistency and identity-vs-context linear probes.

Each function returns a polars table (or arrays) and leaves writing to the caller;
:func:`embedding_report` runs them all and writes tables, JSON and figures.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from dnakmer.datasets.windows import (
    Windows,
    genome_kmer_counts,
    kmer_codes,
    reverse_complement_codes,
    sample_windows,
)
from dnakmer.genome import Genome
from dnakmer.models import LoadedModel, random_init
from dnakmer.probes.embeddings import hidden_states, static_embeddings

__all__ = [
    "edit_distance",
    "embedding_report",
    "kmer_similarity",
    "linear_probes",
    "project",
    "strand_consistency",
    "token_embedding_report",
    "token_frequencies",
    "token_similarity",
]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _spearman_rows(
    cos: np.ndarray,
    relations: dict[str, np.ndarray],
    counts: np.ndarray | None,
    i: np.ndarray,
    j: np.ndarray,
) -> list[dict[str, Any]]:
    """Spearman rho of pair cosines with each relation (plus the absolute difference of
    log frequencies when ``counts`` is given), one row each; a relation that is the same
    for every pair (e.g. Hamming distance of distinct 1-mers) has no rank correlation and
    is left out."""
    from scipy.stats import spearmanr

    if counts is not None:
        logf = np.log1p(np.asarray(counts, dtype=np.float64))
        relations = relations | {"log_frequency_difference": np.abs(logf[i] - logf[j])}
    return [
        {
            "relation": name,
            "statistic": "spearman",
            "value": float(spearmanr(cos, values).statistic),
            "n": len(cos),
        }
        for name, values in relations.items()
        if np.ptp(values) > 0
    ]


def _shared_run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Length of the common leading run of equal bases of paired rows (m, k)."""
    equal = a == b
    return np.cumprod(equal, axis=1).sum(axis=1)


def kmer_similarity(
    embeddings: np.ndarray,
    *,
    counts: np.ndarray | None = None,
    n_pairs: int = 200_000,
    seed: int = 0,
) -> pl.DataFrame:
    """How cosine similarity of k-mer embeddings follows sequence relations.

    Parameters
    ----------
    embeddings : numpy.ndarray, shape (4**k, hidden)
        Rows in canonical k-mer order (:func:`dnakmer.probes.embeddings.static_embeddings`).
    counts : numpy.ndarray, shape (4**k,), optional
        Genome k-mer counts, for the frequency relation.
    n_pairs : int
        Random distinct pairs used for the rank correlations.

    Returns
    -------
    polars.DataFrame
        Columns ``relation``, ``statistic``, ``value``, ``n``: Spearman correlation of
        cosine with Hamming distance, shared prefix and suffix length, absolute GC
        difference and absolute log-frequency difference (each left out where it is the
        same for every pair, as Hamming distance for k = 1); mean cosine of
        reverse-complement pairs and of random pairs.
    """

    n = embeddings.shape[0]
    k = round(np.log(n) / np.log(4))
    if 4**k != n:
        raise ValueError(f"expected 4**k rows, got {n}")
    table = kmer_codes(k)
    unit = _unit_rows(embeddings)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=n_pairs)
    j = rng.integers(0, n - 1, size=n_pairs)
    j = j + (j >= i)  # distinct pairs
    cos = np.einsum("ij,ij->i", unit[i], unit[j])
    a, b = table[i], table[j]
    gc = np.isin(table, (2, 3)).sum(axis=1)
    relations: dict[str, np.ndarray] = {
        "hamming_distance": (a != b).sum(axis=1),
        "shared_prefix": _shared_run(a, b),
        "shared_suffix": _shared_run(a[:, ::-1], b[:, ::-1]),
        "gc_difference": np.abs(gc[i] - gc[j]),
    }
    rows = _spearman_rows(cos, relations, counts, i, j)
    rc = _rc_index(table)
    not_palindrome = rc != np.arange(n)
    rc_cos = np.einsum("ij,ij->i", unit[not_palindrome], unit[rc[not_palindrome]])
    rows.append(
        {
            "relation": "reverse_complement_pairs",
            "statistic": "mean_cosine",
            "value": float(rc_cos.mean()),
            "n": int(not_palindrome.sum()),
        }
    )
    rows.append(
        {
            "relation": "random_pairs",
            "statistic": "mean_cosine",
            "value": float(cos.mean()),
            "n": n_pairs,
        }
    )
    return pl.DataFrame(rows)


def _rc_index(table: np.ndarray) -> np.ndarray:
    """Canonical index of the reverse complement of every k-mer."""
    rc = reverse_complement_codes(table).astype(np.int64)
    k = table.shape[1]
    return (rc * (4 ** np.arange(k - 1, -1, -1))[None, :]).sum(axis=1)


def project(embeddings: np.ndarray, method: str = "pca", *, seed: int = 0) -> np.ndarray:
    """2-D projection of embeddings, shape (n, 2) float32, by PCA or UMAP (needs
    ``umap-learn``)."""
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(embeddings).astype(np.float32)
    if method == "umap":
        try:
            import umap
        except ImportError as e:
            raise ImportError("UMAP projections need umap-learn: pip install umap-learn") from e
        reducer = umap.UMAP(n_components=2, random_state=seed)
        return np.asarray(reducer.fit_transform(embeddings), dtype=np.float32)
    raise ValueError(f"method must be 'pca' or 'umap', got {method!r}")


def _has_umap() -> bool:
    import importlib.util

    return importlib.util.find_spec("umap") is not None


def kmer_colourings(k: int) -> dict[str, np.ndarray]:
    """Per k-mer: the base code at each position (``nt 0`` ... ``nt k-1``) and GC
    fraction, for colouring projections."""
    table = kmer_codes(k)
    out: dict[str, np.ndarray] = {f"nt {j}": table[:, j].astype(np.int64) for j in range(k)}
    out["GC fraction"] = np.isin(table, (2, 3)).mean(axis=1)
    return out


def _rc_kmer_lookup(k: int) -> np.ndarray:
    return _rc_index(kmer_codes(k))


def strand_consistency(
    loaded: LoadedModel,
    codes: np.ndarray,
    *,
    layer: int = -1,
    batch_size: int = 32,
    seed: int = 0,
) -> pl.DataFrame:
    """Does the model treat a window and its reverse complement alike?

    Parameters
    ----------
    codes : numpy.ndarray, shape (n, length), uint8
        Windows of base codes 0-3.

    Returns
    -------
    polars.DataFrame
        One row per window: ``cosine_rc`` (sequence embeddings of the window and of its
        reverse complement at ``layer``) and ``cosine_other`` (the window vs another
        random window: the scale to compare with). For k-mer masked LMs also: the
        centre token masked on both strands, ``fwd_correct``, ``rc_correct`` and
        ``agree`` (the reverse-strand prediction, reverse-complemented, equals the
        forward one).
    """
    rc_codes = reverse_complement_codes(codes)
    fwd = _unit_rows(hidden_states(loaded, codes, layers=(layer,), batch_size=batch_size)[layer])
    rev = _unit_rows(hidden_states(loaded, rc_codes, layers=(layer,), batch_size=batch_size)[layer])
    n = len(codes)
    other = (np.arange(n) + np.random.default_rng(seed).integers(1, max(n, 2), size=n)) % n
    cols: dict[str, Any] = {
        "window": np.arange(n, dtype=np.int32),
        "cosine_rc": np.einsum("ij,ij->i", fwd, rev),
        "cosine_other": np.einsum("ij,ij->i", fwd, fwd[other]),
    }
    if loaded.is_kmer and loaded.tokenizer.stride == 1 and loaded.has_mlm_head:
        cols.update(_strand_predictions(loaded, codes, rc_codes, batch_size))
    return pl.DataFrame(cols)


def _strand_predictions(
    loaded: LoadedModel, codes: np.ndarray, rc_codes: np.ndarray, batch_size: int
) -> dict[str, np.ndarray]:
    from dnakmer.datasets.windows import kmer_index
    from dnakmer.probes.masked_tokens import _model_kmer_probs

    tok, k = loaded.tokenizer, loaded.k
    n, length = codes.shape
    n_tokens = length - k + 1
    centre = n_tokens // 2
    preds = []
    for strand, token in ((codes, centre), (rc_codes, n_tokens - 1 - centre)):
        ids = np.stack([tok.encode_codes(row) for row in strand])
        masked = np.zeros(ids.shape, dtype=bool)
        masked[:, token] = True
        inputs = np.empty((n, n_tokens + 2), dtype=ids.dtype)
        inputs[:, 0], inputs[:, -1] = tok.cls_token_id, tok.sep_token_id
        inputs[:, 1:-1] = np.where(masked, tok.mask_token_id, ids)
        preds.append(_model_kmer_probs(loaded, inputs, masked, batch_size).argmax(axis=1))
    truth = kmer_index(codes, k)[:, centre]
    fwd_pred, rc_pred_as_fwd = preds[0], _rc_kmer_lookup(k)[preds[1]]
    return {
        "fwd_correct": fwd_pred == truth,
        "rc_correct": rc_pred_as_fwd == truth,
        "agree": fwd_pred == rc_pred_as_fwd,
    }


def _probe_targets(
    codes: np.ndarray, w: np.ndarray, t: np.ndarray, k: int, max_distance: int
) -> list[tuple[str, int, int, np.ndarray]]:
    """(target, offset, distance, labels): own bases, then bases d outside each side."""
    out = [("own", j, 0, codes[w, t + j]) for j in range(k)]
    for d in range(1, max_distance + 1):
        out.append(("left", -1, d, codes[w, t - d]))
        out.append(("right", -1, d, codes[w, t + k - 1 + d]))
    return out


def linear_probes(
    loaded: LoadedModel,
    codes: np.ndarray,
    *,
    layers: tuple[int, ...] | None = None,
    max_distance: int = 5,
    tokens_per_window: int = 8,
    test_fraction: float = 0.25,
    batch_size: int = 32,
    seed: int = 0,
) -> pl.DataFrame:
    """Identity-vs-context linear probes on contextual token embeddings, per layer.

    From a k-mer token's hidden state, a logistic regression predicts (a) each of its
    own k bases and (b) the base at distance d = 1..``max_distance`` left and right
    outside the token. Windows are split into train and test sets (no window in both).

    Returns
    -------
    polars.DataFrame
        ``layer``, ``target`` ("own", "left", "right"), ``offset`` (base in the token,
        -1 for outside), ``distance``, ``accuracy`` (test), ``chance`` (the training
        majority base on the test set), ``n_train``, ``n_test``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if not loaded.is_kmer or loaded.tokenizer.stride != 1:
        raise ValueError("linear probes of k-mer identity need an overlapping k-mer model")
    k = loaded.k
    n, length = codes.shape
    n_tokens = length - k + 1
    if n_tokens - 2 * max_distance < 1 or n < 4:
        raise ValueError(f"need >= 4 windows longer than {2 * max_distance + k} bases")
    n_layers = int(loaded.model.config.num_hidden_layers) + 1
    layers = tuple(range(n_layers)) if layers is None else layers
    rng = np.random.default_rng(seed)
    per = min(tokens_per_window, n_tokens - 2 * max_distance)
    t = np.stack(
        [rng.choice(np.arange(max_distance, n_tokens - max_distance), per, False) for _ in range(n)]
    ).ravel()
    w = np.repeat(np.arange(n), per)
    test_windows = rng.permutation(n)[: max(1, round(n * test_fraction))]
    is_test = np.isin(w, test_windows)
    states = hidden_states(loaded, codes, layers=layers, level="token", batch_size=batch_size)
    rows = []
    for layer in layers:
        x = StandardScaler().fit_transform(states[layer][w, t])
        for target, offset, distance, y in _probe_targets(codes, w, t, k, max_distance):
            clf = LogisticRegression(max_iter=300).fit(x[~is_test], y[~is_test])
            majority = np.bincount(y[~is_test], minlength=4).argmax()
            rows.append(
                {
                    "layer": layer % n_layers,
                    "target": target,
                    "offset": offset,
                    "distance": distance,
                    "accuracy": float(clf.score(x[is_test], y[is_test])),
                    "chance": float((y[is_test] == majority).mean()),
                    "n_train": int((~is_test).sum()),
                    "n_test": int(is_test.sum()),
                }
            )
    return pl.DataFrame(rows)


def embedding_report(
    loaded: LoadedModel,
    genome: Genome | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    n_windows: int = 128,
    window_tokens: int = 64,
    max_distance: int = 5,
    batch_size: int = 32,
    seed: int = 0,
    control: bool = True,
) -> dict[str, Any]:
    """Run every embedding analysis on windows sampled from ``genome``; write
    ``kmer_similarity.csv``, ``strand.parquet``, ``probes.csv``, ``summary.json`` and
    the figures ``projection_pca.png`` (and ``projection_umap.png`` when umap-learn is
    installed) and ``probe_curves.png`` into ``out_dir``.

    With ``control``, the static k-mer similarity relations are also measured on the same
    architecture with random weights (seeded with ``seed + 1``):
    ``kmer_similarity_random_init.csv`` and ``summary["kmer_similarity_random_init"]``.

    Returns
    -------
    dict
        The content of ``summary.json``.
    """
    from dnakmer import plots
    from dnakmer._io import atomic_open, write_json

    g = genome if isinstance(genome, Genome) else Genome.open(genome)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    k = loaded.k if loaded.is_kmer else None
    stride = loaded.tokenizer.stride if k is not None else 1
    length = (window_tokens - 1) * stride + (k or 1)
    windows: Windows = sample_windows(g, n_windows, length, seed=seed)
    summary: dict[str, Any] = {"model": str(loaded.path), "genome": str(g.path), "seed": seed}
    if k is not None:
        static = static_embeddings(loaded)
        counts = genome_kmer_counts(g, k)
        sim = kmer_similarity(static, counts=counts, seed=seed)
        with atomic_open(out / "kmer_similarity.csv") as f:
            sim.write_csv(f)
        summary["kmer_similarity"] = sim.to_dicts()
        summary["n_kmers"] = int(static.shape[0])
        if control:
            # The same architecture untrained: what the relations look like by chance
            # (seed + 1, so that a model initialised with ``seed`` is not its own control).
            random_static = static_embeddings(random_init(loaded, seed=seed + 1))
            control_sim = kmer_similarity(random_static, counts=counts, seed=seed)
            with atomic_open(out / "kmer_similarity_random_init.csv") as f:
                control_sim.write_csv(f)
            summary["kmer_similarity_random_init"] = control_sim.to_dicts()
        colours = kmer_colourings(k)
        for method in ("pca", "umap"):
            if method == "umap" and not _has_umap():
                continue
            plots.projection_grid(
                project(static, method, seed=seed),
                colours,
                out / f"projection_{method}.png",
                title=f"static {k}-mer embeddings, {method.upper()}",
            )
    if k is not None and stride == 1:
        probes = linear_probes(
            loaded, windows.codes, max_distance=max_distance, batch_size=batch_size, seed=seed
        )
        with atomic_open(out / "probes.csv") as f:
            probes.write_csv(f)
        plots.probe_curves(probes, out / "probe_curves.png")
        summary["probes"] = probes.to_dicts()
    strand = strand_consistency(loaded, windows.codes, batch_size=batch_size, seed=seed)
    with atomic_open(out / "strand.parquet", "wb") as f:
        strand.write_parquet(f)
    summary["strand"] = {
        c: float(np.mean(strand[c].cast(pl.Float64).to_numpy()))
        for c in strand.columns
        if c != "window"
    }
    write_json(out / "summary.json", summary)
    return summary


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions and substitutions cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def token_frequencies(loaded: LoadedModel, genome: Genome, *, n_windows: int = 256, seed: int = 0):
    """How often each of the model's DNA tokens occurs when it tokenizes the genome
    (``n_windows`` seeded windows of 1,000 bases, or fewer bases for short genomes)."""
    from dnakmer.probes.masked_bases import dna_tokens

    ids, _ = dna_tokens(loaded)
    length = min(1000, max(int(x) for x in genome.lengths))
    codes = sample_windows(genome, n_windows, length, seed=seed).codes
    enc = loaded.encoder.encode(codes)
    used = enc.input_ids[enc.attention_mask.astype(bool)]
    counts = np.bincount(used, minlength=int(max(used.max(initial=0), ids.max()) + 1))
    return counts[ids]


def token_similarity(
    embeddings: np.ndarray,
    texts: list[str],
    *,
    counts: np.ndarray | None = None,
    n_pairs: int = 50_000,
    seed: int = 0,
) -> pl.DataFrame:
    """How cosine similarity of the embeddings of a variable-length DNA vocabulary (BPE)
    follows the tokens' sequences: Spearman correlation with edit distance, length
    difference, GC-content difference and log-frequency difference, over random distinct
    pairs (the relations GROVER analysed for its BPE tokens).

    Parameters
    ----------
    embeddings : numpy.ndarray, shape (n_tokens, hidden)
    texts : list of str
        The tokens' bases, in the order of ``embeddings``.
    counts : numpy.ndarray, shape (n_tokens,), optional
        Occurrences of each token in the tokenized genome.

    Returns
    -------
    polars.DataFrame
        Columns ``relation``, ``statistic``, ``value``, ``n`` (as :func:`kmer_similarity`).
    """

    n = len(texts)
    if n < 3 or embeddings.shape[0] != n:
        raise ValueError(f"need one embedding row per token and at least 3 tokens, got {n}")
    unit = _unit_rows(embeddings)
    rng = np.random.default_rng(seed)
    pairs = min(n_pairs, n * (n - 1) // 2)
    i = rng.integers(0, n, size=pairs)
    j = rng.integers(0, n - 1, size=pairs)
    j = j + (j >= i)
    cos = np.einsum("ij,ij->i", unit[i], unit[j])
    length = np.array([len(t) for t in texts], dtype=np.float64)
    gc = np.array([(t.count("G") + t.count("C")) / len(t) for t in texts])
    edits = [edit_distance(texts[a], texts[b]) for a, b in zip(i, j, strict=True)]
    relations: dict[str, np.ndarray] = {
        "edit_distance": np.array(edits),
        "length_difference": np.abs(length[i] - length[j]),
        "gc_difference": np.abs(gc[i] - gc[j]),
    }
    rows = _spearman_rows(cos, relations, counts, i, j)
    rows.append(
        {"relation": "random_pairs", "statistic": "mean_cosine", "value": float(cos.mean()),
         "n": pairs}
    )  # fmt: skip
    return pl.DataFrame(rows)


def token_embedding_report(
    loaded: LoadedModel,
    genome: Genome | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Static embeddings of a model whose tokens are not all k-mers of one length (BPE,
    Nucleotide Transformer's 6-mers and single bases): :func:`token_similarity` of the
    trained model and of a random-init control of the same shape, written to
    ``token_similarity.csv`` and ``summary.json`` (``token_similarity``,
    ``token_similarity_random_init``, ``n_tokens``)."""
    from dnakmer._io import atomic_open, write_json
    from dnakmer.probes.masked_bases import dna_tokens

    g = genome if isinstance(genome, Genome) else Genome.open(genome)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids, texts = dna_tokens(loaded)
    counts = token_frequencies(loaded, g, seed=seed)
    matrix = loaded.model.get_input_embeddings().weight.detach().float().cpu().numpy()
    control = random_init(loaded, seed=seed + 1)
    matrix_c = control.model.get_input_embeddings().weight.detach().float().cpu().numpy()
    real = token_similarity(matrix[ids], texts, counts=counts, seed=seed)
    random = token_similarity(matrix_c[ids], texts, counts=counts, seed=seed)
    table = pl.concat(
        [real.with_columns(init=pl.lit("pretrained")), random.with_columns(init=pl.lit("random"))]
    )
    with atomic_open(out / "token_similarity.csv", "w") as f:
        table.write_csv(f)
    summary = {
        "n_tokens": len(texts),
        "token_lengths": sorted({len(t) for t in texts}),
        "token_similarity": real.to_dicts(),
        "token_similarity_random_init": random.to_dicts(),
    }
    write_json(out / "summary.json", summary)
    return summary
