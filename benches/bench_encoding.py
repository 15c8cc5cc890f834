"""Bases to model ids for every model family (``dnakmer.models.encoding``) against the
per-row loop over the model's own Hugging Face tokenizer, on the same windows.

    python benches/bench_encoding.py [--windows 20000] [--bases 96]

Tiny models in the folder formats of DNABERT (k-mer vocab.txt), GROVER (BPE
tokenizer.json), the Nucleotide Transformer (EsmTokenizer) and a character vocabulary are
written to a temporary folder (tests/model_formats.py); windows are drawn from the E. coli
genome shipped with dnakmer. Each path's ids are checked equal to the loop's before timing
counts. Prints a Markdown table (windows per second, best of 3).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def best_of(fn, repeats: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    from dnakmer.data import demo_genome
    from dnakmer.datasets.windows import sample_windows
    from dnakmer.genome import Genome
    from dnakmer.models import load_tokenizer
    from dnakmer.models.encoding import BaseEncoder, codes_to_text
    from model_formats import FORMATS, write_format

    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=20_000)
    ap.add_argument("--bases", type=int, default=96)
    args = ap.parse_args()
    g = Genome.open(demo_genome())
    codes = sample_windows(g, args.windows, args.bases, seed=0).codes
    print(
        f"{args.windows:,} windows of {args.bases} bases (E. coli); "
        f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    print(
        "| format | dnakmer path | dnakmer windows/s | per-row tokenizer loop windows/s "
        "| speed-up |"
    )
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in FORMATS:
            folder = write_format(
                fmt, Path(tmp) / fmt, ROOT / "tests" / "data" / "lambda_phage.fa.gz"
            )
            tok = load_tokenizer(folder)
            enc = BaseEncoder(tok, fmt)
            fast, out = best_of(lambda enc=enc: enc.encode(codes))
            if fmt == "dnabert":
                from transformers import BertTokenizer

                hf = BertTokenizer(str(folder / "vocab.txt"), do_lower_case=False)
                texts = [
                    " ".join(t[i : i + 3] for i in range(len(t) - 2)) for t in codes_to_text(codes)
                ]
            else:
                hf = tok
                texts = codes_to_text(codes, enc.sep)
            slow, rows = best_of(lambda hf=hf, texts=texts: [hf(t)["input_ids"] for t in texts], 1)
            mask = out.attention_mask.astype(bool)  # type: ignore[attr-defined]
            ids = out.input_ids  # type: ignore[attr-defined]
            assert all(ids[i][mask[i]].tolist() == list(r) for i, r in enumerate(rows)), fmt  # type: ignore[union-attr]
            n = args.windows
            print(
                f"| {fmt} | {enc.kind} | {n / fast:,.0f} | {n / slow:,.0f} | {slow / fast:.1f}x |"
            )


if __name__ == "__main__":
    main()
