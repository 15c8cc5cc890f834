"""Training throughput of next-6-mer fine-tuning: samples/s, tokens/s, model FLOPs
utilisation and peak memory, plus the data loader's own rate (it must never be the
bottleneck).

    python benches/bench_train.py            # CUDA: 12x768 DNABERT-size model, bf16
    python benches/bench_train.py --cpu      # tiny model on the CPU

Data: next-6-mer samples with 515-nt contexts (510 overlapping 6-mers + [CLS]/[SEP])
from E. coli K-12 (``../shared/data/ecoli_k12.fa.gz``).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from dnakmer import KmerTokenizer
from dnakmer.datasets import nextkmer
from dnakmer.training.finetune import _Collate, _Rows, training_order

ROOT = Path(__file__).resolve().parents[1]
ECOLI = ROOT.parent / "shared" / "data" / "ecoli_k12.fa.gz"
H100_BF16_DENSE = 989e12


def build_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    tok = KmerTokenizer(6)
    ds = nextkmer.build(ECOLI, 6, 515, tok, n_train=n, n_val=64, n_test=64, seed=0)
    rows = ds.indices("train")
    return np.asarray(ds.input_ids)[rows], np.asarray(ds.labels)[rows]


def model_flops_per_sample(params: int, layers: int, hidden: int, seq: int) -> float:
    """Training FLOPs per sample: 6 per parameter per token plus attention scores."""
    return 6.0 * params * seq + 12.0 * layers * hidden * seq * seq


def loader_rate(ids: np.ndarray, labels: np.ndarray, batch: int, workers: int, pin: bool) -> float:
    import torch

    ds = _Rows(ids, labels, training_order(len(labels), 40 * batch, 0))
    dl = torch.utils.data.DataLoader(
        ds, batch_size=batch, collate_fn=_Collate(0), num_workers=workers, pin_memory=pin
    )
    t0, n = time.perf_counter(), 0
    for b in dl:
        n += b["input_ids"].shape[0]
    return n / (time.perf_counter() - t0)


def train_rate(
    ids: np.ndarray, labels: np.ndarray, cuda: bool, steps: int, batch: int
) -> dict[str, float]:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    size = (
        dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
        if cuda
        else dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256)
    )
    config = BertConfig(vocab_size=4101, max_position_embeddings=512, num_labels=4096, **size)
    dev = torch.device("cuda" if cuda else "cpu")
    model = BertForSequenceClassification(config).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=cuda)
    ds = _Rows(ids, labels, training_order(len(labels), (steps + 5) * batch, 0))
    dl = torch.utils.data.DataLoader(
        ds, batch_size=batch, collate_fn=_Collate(0), num_workers=4 if cuda else 0, pin_memory=cuda
    )
    it = iter(dl)

    def step() -> None:
        b = {k: v.to(dev, non_blocking=True) for k, v in next(it).items()}
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss = model(**b).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    seq = ids.shape[1]
    samples = steps * batch / dt
    flops = samples * model_flops_per_sample(
        params, config.num_hidden_layers, config.hidden_size, seq
    )
    out = {
        "params": params,
        "samples_per_s": samples,
        "tokens_per_s": samples * seq,
        "model_tflops": flops / 1e12,
    }
    if cuda:
        out["mfu"] = flops / H100_BF16_DENSE
        out["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cpu", action="store_true", help="tiny model on the CPU")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    args = ap.parse_args()
    cuda = torch.cuda.is_available() and not args.cpu
    batch = args.batch or (64 if cuda else 16)
    steps = args.steps or (50 if cuda else 10)
    ids, labels = build_data(max(2000, batch * (steps + 8)))
    device = torch.cuda.get_device_name() if cuda else platform.processor() or "cpu"
    print(f"device: {device}; torch {torch.__version__}; batch {batch}, {ids.shape[1]} tokens")
    rate = loader_rate(ids, labels, batch, 4 if cuda else 0, cuda)
    print(f"data loader alone: {rate:,.0f} samples/s")
    for key, val in train_rate(ids, labels, cuda, steps, batch).items():
        print(f"{key}: {val:,.4g}")


if __name__ == "__main__":
    main()
