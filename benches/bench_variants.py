"""Variant effects: the batched region scan against the naive loop, and the rank
correlations of the two masks with the genome's Markov chain.

    python benches/bench_variants.py [--positions 300] [--naive-positions 60]
        [--snvs 5000] [--seed 0] [--threads 1]

Same model (the shipped ``overlapping-6mer`` unless ``--model``), same genome (the
shipped E. coli unless ``--genome``), same region, same windows:

* batched: ``dnakmer.probes.variant_effects.scan_region`` (one forward pass per
  position, windows in batches of 32);
* naive: the brute-force reference of tests/variant_reference.py, the loop written from
  the definition (for each alternative its own window string, the model's own
  ``BertTokenizer``, one masked copy and one forward pass: 3 per position, per-base
  probabilities summed in Python);
* naive, vectorised: the same loop with the per-base probabilities of a slot taken as
  one matrix product, so that only the forward passes and the tokenizer calls differ
  from the batched path.

The naive loops run on the first ``--naive-positions`` positions of the region; their
scores must equal the batched ones there (to 1e-4) before any rate is printed. Model
loading is not timed. Then ``score_variants`` on ``--snvs`` random SNVs (seeded) gives
the Spearman correlation of each mask's score with the Markov log-ratio, with its 95 %
interval.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def machine() -> str:
    """CPU model and cores (``lscpu``), Python and torch versions."""
    import torch

    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def rank_correlations(loaded, genome, n: int, seed: int) -> dict:
    """Both masks' Spearman with the Markov log-ratio and mean P(ref) on ``n`` random
    SNVs (``VariantScores.summary()``), and the seconds ``score_variants`` took."""
    from dnakmer.probes.variant_effects import score_variants
    from variant_reference import random_snvs

    snvs = random_snvs(genome, n, seed)
    start = time.perf_counter()
    summary = score_variants(loaded, genome, snvs).summary()
    summary["seconds"] = time.perf_counter() - start
    return summary


def naive_vectorised(folder: Path, genome, chrom: str, start: int, end: int, window: int):
    """The reference's loop (one window string, tokenizer call and forward pass per
    alternative) with each slot's per-base probabilities as one matrix product."""
    import torch

    from variant_reference import BASES, dna_tokens, reference_model, tokenize, window_string

    tok, model, meta = reference_model(str(folder))
    assert meta["tokenization"] != "bpe", "the vectorised loop reads k-mer slots only"
    ids, texts = dna_tokens(str(folder))
    k = max(len(t) for t in texts)
    spell = np.zeros((k, len(texts), 4))
    for r, text in enumerate(texts):
        for j, letter in enumerate(text):
            spell[j, r, BASES.index(letter)] = 1.0
    cols = torch.tensor(ids)
    out = np.full((end - start, 4), np.nan)
    for i, pos0 in enumerate(range(start, end)):
        text, x = window_string(genome, chrom, pos0 + 1, window)
        if text[x] not in BASES:
            continue
        for alt in BASES:
            if alt == text[x]:
                continue
            ids_alt, spans = tokenize(str(folder), text[:x] + alt + text[x + 1 :])
            slots = [t for t, s in enumerate(spans) if s is not None and s[0] <= x < s[1]]
            inputs = torch.tensor([ids_alt])
            inputs[0, slots] = tok.mask_token_id
            with torch.no_grad():
                logits = model(input_ids=inputs).logits[0, slots][:, cols].double()
            p = torch.softmax(logits, dim=-1).numpy()
            per_slot = [p[s] @ spell[x - spans[t][0]] for s, t in enumerate(slots)]  # type: ignore[index]
            per_slot = [e / e.sum() for e in per_slot]
            probs = np.mean(per_slot, axis=0)
            out[i, BASES.index(alt)] = np.log(probs[BASES.index(alt)]) - np.log(
                probs[BASES.index(text[x])]
            )
        out[i, BASES.index(text[x])] = 0.0
    return out


def timed(fn, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    import torch

    from dnakmer import Genome
    from dnakmer.data import demo_genome, demo_models_dir
    from dnakmer.datasets.variants import Region
    from dnakmer.models import load
    from dnakmer.probes.variant_effects import default_window, scan_region
    from variant_reference import naive_scan, reference_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--genome", type=Path, default=demo_genome())
    ap.add_argument("--model", type=Path, default=demo_models_dir() / "overlapping-6mer")
    ap.add_argument("--start", type=int, default=1_000_000, help="0-based region start")
    ap.add_argument("--positions", type=int, default=300)
    ap.add_argument("--naive-positions", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3, help="best of, for the batched scan")
    ap.add_argument("--snvs", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    g = Genome.open(args.genome)
    chrom = g.names[0]
    loaded = load(args.model, device="cpu")
    reference_model(str(args.model))  # load outside the timing
    window = default_window(loaded)
    region = Region(chrom, args.start, args.start + args.positions)
    n_naive = min(args.naive_positions, args.positions)
    print(f"{machine()}\n")
    print(
        f"model {args.model.name}, window {window} bases, region {region} "
        f"({args.positions} positions; naive loops on the first {n_naive})\n"
    )

    fast, result = timed(lambda: scan_region(loaded, g, region, window=window), args.repeats)
    end = args.start + n_naive
    slow, naive = timed(lambda: naive_scan(args.model, g, chrom, args.start, end, window=window), 1)
    vec, naive_vec = timed(
        lambda: naive_vectorised(args.model, g, chrom, args.start, end, window), 1
    )
    for name, other in (("naive", naive), ("naive, vectorised", naive_vec)):
        diff = float(np.nanmax(np.abs(result.scores[:n_naive] - other)))
        assert diff < 1e-4, f"{name} differs from the batched scan by {diff}"
        print(f"{name}: largest |score difference| on the shared positions {diff:.1e}")
    rate = args.positions / fast
    print("\n| path | positions | seconds | positions/s | batched is |")
    print("|---|---:|---:|---:|---:|")
    print(f"| batched `scan_region` | {args.positions} | {fast:.2f} | {rate:,.1f} | |")
    for name, secs in (("naive loop (reference)", slow), ("naive loop, vectorised", vec)):
        r = n_naive / secs
        print(f"| {name} | {n_naive} | {secs:.2f} | {r:,.1f} | {rate / r:.1f}x faster |")

    summary = rank_correlations(loaded, g, args.snvs, args.seed)
    print(
        f"\n{args.snvs:,} random SNVs (seed {args.seed}) of {chrom}, score_variants "
        f"{summary['seconds']:.1f} s, Markov order {summary['markov_order']}:\n"
    )
    print("| mask | mean P(ref) | median score | Spearman with Markov | 95 % CI | n |")
    print("|---|---:|---:|---:|---|---:|")
    for name, m in summary["masks"].items():
        sp = m["markov_spearman"]
        lo, hi = sp["ci95"]
        print(
            f"| {name} | {m['mean_p_ref']:.3f} | {m['median_score']:.3f} | {sp['rho']:.3f} | "
            f"{lo:.3f} to {hi:.3f} | {sp['n']} |"
        )


if __name__ == "__main__":
    main()
