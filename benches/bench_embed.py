"""Sequence-embedding throughput: dnakmer's path vs the path DNABERT users write today.

Both paths embed the same windows of a real genome with the same model, in the same run,
and must give the same embeddings (checked before timing is reported):

* naive: space-joined k-mer strings built in Python -> ``transformers.BertTokenizer``
  (``do_lower_case=False``) -> ``BertModel`` under ``torch.no_grad`` -> mean over the
  non-special tokens;
* dnakmer: ``dnakmer.probes.embeddings.hidden_states`` (Rust tokenization, zero-copy NumPy -> torch,
  ``torch.inference_mode``, encoder only, bf16 autocast on CUDA).

Run from the repository root::

    python benches/bench_embed.py [--genome ../shared/data/ecoli_k12.fa.gz] [--device cuda]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dnakmer import Genome
from dnakmer.datasets.windows import sample_windows
from dnakmer.models import DnaKmerTokenizer, load, tiny_bert
from dnakmer.probes.embeddings import hidden_states

DEFAULT_GENOME = Path(__file__).resolve().parents[2] / "shared" / "data" / "ecoli_k12.fa.gz"


def naive_embeddings(
    folder: Path, seqs: list[str], k: int, batch_size: int, device: str
) -> tuple[np.ndarray, float]:
    """What users write today for DNABERT (tokenizer and model loading not timed)."""
    from transformers import BertModel, BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(folder, do_lower_case=False)
    model = BertModel.from_pretrained(folder, add_pooling_layer=False).to(device).eval()
    start = time.perf_counter()
    out = []
    with torch.no_grad():
        for lo in range(0, len(seqs), batch_size):
            batch = [
                " ".join(s[i : i + k] for i in range(len(s) - k + 1))
                for s in seqs[lo : lo + batch_size]
            ]
            enc = tokenizer(batch, return_tensors="pt", padding=True).to(device)
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].clone()
            mask[:, 0] = 0
            mask[torch.arange(len(batch)), enc["attention_mask"].sum(1) - 1] = 0  # [SEP]
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            out.append(pooled.float().cpu().numpy())
    return np.concatenate(out), time.perf_counter() - start


def dnakmer_embeddings(
    folder: Path, codes: np.ndarray, batch_size: int, device: str
) -> tuple[np.ndarray, float]:
    loaded = load(folder, device=device)
    start = time.perf_counter()
    emb = hidden_states(loaded, codes, layers=(-1,), batch_size=batch_size)[-1]
    return emb, time.perf_counter() - start


def run_config(
    genome: Genome, k: int, hidden: int, layers: int, window_tokens: int, args: argparse.Namespace
) -> tuple[float, float]:
    """Best-of-``repeats`` seconds of (naive, dnakmer) for one model and window size."""
    windows = sample_windows(genome, args.windows, window_tokens + k - 1, seed=0)
    seqs = ["".join("ATCG"[c] for c in row) for row in windows.codes]
    with tempfile.TemporaryDirectory(prefix="bench_embed.") as tmp:
        folder = Path(tmp)
        model = tiny_bert(k, hidden=hidden, layers=layers, heads=max(1, hidden // 32))
        model.save_pretrained(folder)
        DnaKmerTokenizer(k=k).save_pretrained(folder)
        naive_times, ours_times = [], []
        for _ in range(args.repeats):
            naive, t_naive = naive_embeddings(folder, seqs, k, args.batch_size, args.device)
            ours, t_ours = dnakmer_embeddings(folder, windows.codes, args.batch_size, args.device)
            # bf16 autocast on GPU changes the low bits; on CPU both paths are float32.
            tol = 5e-2 if args.device.startswith("cuda") else 1e-4
            np.testing.assert_allclose(ours, naive, atol=tol, rtol=tol)
            naive_times.append(t_naive)
            ours_times.append(t_ours)
    return min(naive_times), min(ours_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genome", type=Path, default=DEFAULT_GENOME)
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument(
        "--configs",
        default="32x1x128,64x2x128,64x2x510",
        help="comma-separated HIDDENxLAYERSxWINDOW_TOKENS model/window sizes",
    )
    parser.add_argument("--windows", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="intra-op threads for both paths (on a shared, loaded machine more threads "
        "spin-wait and make timings meaningless)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)

    genome = Genome.open(args.genome)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch threads "
        f"{torch.get_num_threads()}, device {args.device}; {args.windows} windows from "
        f"{args.genome.name}, k={args.k}, batch {args.batch_size}, best of {args.repeats}"
    )
    print("| hidden | layers | tokens/window | naive tokens/s | dnakmer tokens/s | speed-up |")
    print("|---|---|---|---|---|---|")
    for config in args.configs.split(","):
        hidden, layers, window_tokens = (int(x) for x in config.split("x"))
        naive, ours = run_config(genome, args.k, hidden, layers, window_tokens, args)
        n_tokens = args.windows * window_tokens
        print(
            f"| {hidden} | {layers} | {window_tokens} | {n_tokens / naive:,.0f} | "
            f"{n_tokens / ours:,.0f} | {naive / ours:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
