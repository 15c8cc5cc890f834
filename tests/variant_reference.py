"""A brute-force reference of the zero-shot variant score, written from its definition.

It does not use ``dnakmer.probes``: the model and its tokenizer are loaded with
transformers directly, each sequence is a string, and every step is a plain loop.

For one variant (record, 1-based position, REF, ALT) and one model:

1. The window of ``window`` bases around the position, placed as
   :func:`dnakmer.datasets.variants.windows_around` places it (centred, shifted near a
   record's ends, the whole record when it is shorter).
2. The alternative's window as a string (the ALT base written in), tokenized by the
   model's own Hugging Face tokenizer: ``BertTokenizer`` on the space-separated k-mers
   (overlapping for stride 1, disjoint for stride 6; single bases for the nucleotide
   model), ``PreTrainedTokenizerFast`` on the plain string for BPE.
3. Each token's bases ``[start, end)`` in the window: from its index for k-mers, from
   the lengths of the token strings for BPE.
4. The mask: every token whose bases include the variant's base (``"tokens"``), or only
   the one of them whose middle is nearest the base, ties to the leftmost (``"single"``).
   Masked tokens become ``[MASK]`` and the model runs on that one sequence.
5. At each masked slot, the softmax over the DNA tokens (text all A/C/G/T) gives
   P(b) = mass of the tokens whose letter at the base's offset in the token is b,
   divided by the mass of the tokens long enough to reach that offset. The slots'
   estimates are averaged. For BPE, where the predicted token need not have the masked
   token's length, the offset is counted from the masked token's nearer edge (from its
   start for the left half, the middle base included; from its end for the right
   half), as ``dnakmer.probes.masked_bases`` documents.
6. score = ln P(alt) - ln P(ref).

``context="ref"`` writes the reference window instead of the alternative's. With every
covering token masked the two give the same input for k-mer and character tokenizers
(the masked tokens are the only ones that hold the base), which is why one forward pass
can serve three alternatives. They differ where the rest of the input depends on the
base: with the single-token mask (the unmasked neighbours spell whichever base the window
holds, so the batched score reads the reference's) and for BPE (the segmentation around
the base depends on it; the batched score keeps the reference's segmentation).
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from dnakmer.datasets.variants import windows_around
from dnakmer.genome import Genome

CODE_LETTERS = "ATCGN"  # the genome's base codes 0..4
BASES = "ACGT"


@functools.cache
def reference_model(folder: str) -> tuple[Any, Any, dict[str, Any]]:
    """(tokenizer, masked LM, dnakmer.json) of a checkpoint folder, with transformers."""
    import transformers

    path = Path(folder)
    meta = json.loads((path / "dnakmer.json").read_text())
    if (path / "vocab.txt").is_file():
        # Positional: transformers 5 takes the file as ``vocab`` and would silently
        # ignore a ``vocab_file=`` keyword (every k-mer then reads as [UNK]).
        tok = transformers.BertTokenizer(str(path / "vocab.txt"), do_lower_case=False)
        assert len(tok.get_vocab()) == len((path / "vocab.txt").read_text().split())
    else:
        config = json.loads((path / "tokenizer_config.json").read_text())
        specials = {key: value for key, value in config.items() if key.endswith("_token")}
        tok = transformers.PreTrainedTokenizerFast(
            tokenizer_file=str(path / "tokenizer.json"), **specials
        )
    model = transformers.AutoModelForMaskedLM.from_pretrained(path).eval()
    return tok, model, meta


@functools.cache
def dna_tokens(folder: str) -> tuple[list[int], list[str]]:
    """Ids and texts of the vocabulary's tokens that are all A/C/G/T."""
    tok, _, _ = reference_model(folder)
    pairs = sorted((i, t) for t, i in tok.get_vocab().items() if t and set(t) <= set(BASES))
    return [i for i, _ in pairs], [t for _, t in pairs]


def tokenize(folder: str, window: str) -> tuple[list[int], list[tuple[int, int] | None]]:
    """Input ids of a window and each token's bases (None for special tokens)."""
    tok, _, meta = reference_model(folder)
    if meta["tokenization"] != "bpe":
        k, stride = int(meta["k"]), int(meta["stride"])
        starts = list(range(0, len(window) - k + 1, stride))
        ids = tok(" ".join(window[s : s + k] for s in starts))["input_ids"]
        spans: list[tuple[int, int] | None] = [None, *[(s, s + k) for s in starts], None]
    else:
        ids = tok(window)["input_ids"]
        special = set(tok.all_special_tokens)
        spans, at = [], 0
        for text in tok.convert_ids_to_tokens(ids):
            if text in special:
                spans.append(None)
            else:
                spans.append((at, at + len(text)))
                at += len(text)
        assert at == len(window), "BPE tokens do not spell the window"
    assert len(ids) == len(spans)
    return ids, spans


def masked_tokens(spans: list[tuple[int, int] | None], x: int, mask: str) -> list[int]:
    """Indices of the tokens to mask for base ``x``."""
    covering = [t for t, s in enumerate(spans) if s is not None and s[0] <= x < s[1]]
    assert covering, f"no token covers base {x}"
    if mask == "tokens":
        return covering
    assert mask == "single"
    best = covering[0]
    for t in covering:  # strictly nearer only: ties stay with the leftmost
        s, b = spans[t], spans[best]
        assert s is not None and b is not None
        if abs(x - (s[0] + s[1] - 1) / 2) < abs(x - (b[0] + b[1] - 1) / 2):
            best = t
    return [best]


def slot_estimate(logits: np.ndarray, folder: str, j: int, from_end: bool) -> dict[str, float]:
    """P(b) at offset ``j`` (from the token's start, or from its end) of one slot."""
    ids, texts = dna_tokens(folder)
    z = logits[ids].astype(np.float64)
    p = np.exp(z - z.max())
    p /= p.sum()
    mass = dict.fromkeys(BASES, 0.0)
    reach = 0.0
    for pi, text in zip(p, texts, strict=True):
        if len(text) > j:
            mass[text[len(text) - 1 - j] if from_end else text[j]] += pi
            reach += pi
    if reach == 0:
        return dict.fromkeys(BASES, 0.25)
    return {b: m / reach for b, m in mass.items()}


def base_probabilities(folder: str, window: str, x: int, mask: str) -> tuple[dict, int]:
    """P(A, C, G, T) at base ``x`` of ``window`` and how many tokens were masked."""
    import torch

    tok, model, meta = reference_model(folder)
    ids, spans = tokenize(folder, window)
    chosen = masked_tokens(spans, x, mask)
    inputs = list(ids)
    for t in chosen:
        inputs[t] = tok.mask_token_id
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([inputs])).logits[0].float().numpy()
    bpe = meta["tokenization"] == "bpe"
    estimates = []
    for t in chosen:
        s0, s1 = spans[t]  # type: ignore[misc]
        if bpe and x - s0 >= (s1 - s0 + 1) // 2:
            estimates.append(slot_estimate(logits[t], folder, s1 - 1 - x, from_end=True))
        else:
            estimates.append(slot_estimate(logits[t], folder, x - s0, from_end=False))
    p = {b: sum(e[b] for e in estimates) / len(estimates) for b in BASES}
    return p, len(chosen)


def window_string(genome: Genome, chrom: str, pos: int, window: int) -> tuple[str, int]:
    """The window around 1-based ``pos`` as a string, and the position's offset in it."""
    codes, offset = windows_around(genome, chrom, np.array([pos - 1]), window)
    return "".join(CODE_LETTERS[c] for c in codes[0]), int(offset[0])


def zero_shot(
    folder: str | Path,
    genome: Genome,
    chrom: str,
    pos: int,
    ref: str,
    alt: str,
    *,
    window: int,
    mask: str = "tokens",
    context: str = "alt",
) -> dict[str, Any]:
    """The zero-shot score of one SNV: ``p`` (A, C, G, T), ``p_ref``, ``p_alt``,
    ``score`` and ``tokens_masked``."""
    text, x = window_string(genome, chrom, pos, window)
    assert text[x] == ref.upper(), (text[x], ref)
    if context == "alt":
        text = text[:x] + alt.upper() + text[x + 1 :]
    p, n = base_probabilities(str(folder), text, x, mask)
    p_ref, p_alt = p[ref.upper()], p[alt.upper()]
    return {
        "p": [p[b] for b in BASES],
        "p_ref": p_ref,
        "p_alt": p_alt,
        "score": math.log(p_alt) - math.log(p_ref),
        "tokens_masked": n,
    }


def naive_scan(
    folder: str | Path,
    genome: Genome,
    chrom: str,
    start: int,
    end: int,
    *,
    window: int,
    context: str = "alt",
) -> np.ndarray:
    """Scores (positions, 4; A, C, G, T; 0 at the reference) of every substitution of
    the 0-based ``[start, end)`` with every covering token masked: one masked copy per
    alternative, three forward passes per position; NaN rows where the reference base is
    not A, C, G or T."""
    out = np.full((end - start, 4), np.nan)
    for i, pos0 in enumerate(range(start, end)):
        text, x = window_string(genome, chrom, pos0 + 1, window)
        ref = text[x]
        if ref not in BASES:
            continue
        for alt in BASES:
            if alt == ref:
                continue
            r = zero_shot(folder, genome, chrom, pos0 + 1, ref, alt, window=window, context=context)
            out[i, BASES.index(alt)] = r["score"]
        out[i, BASES.index(ref)] = 0.0
    return out


def random_snvs(g: Genome, n: int, seed: int, edge: int = 0) -> pl.DataFrame:
    """``n`` SNVs at random positions of the first record (plus ``edge`` positions at
    each end of it), the reference base from the genome, a random other base as ALT."""
    rng = np.random.default_rng(seed)
    chrom, length = g.names[0], g.lengths[0]
    pos = rng.choice(length, size=min(n, length), replace=False) + 1
    ends = [*range(1, edge + 1), *range(length - edge + 1, length + 1)]
    pos = np.unique(np.r_[pos, np.array(ends, dtype=np.int64)])
    codes = g.codes(chrom)[pos - 1]
    pos, codes = pos[codes < 4], codes[codes < 4]
    refs = np.array(list("ATCG"))[codes]
    shift = rng.integers(1, 4, size=len(pos))
    alts = np.array(list("ACGT"))[(np.array(["ACGT".index(r) for r in refs]) + shift) % 4]
    return pl.DataFrame({"chrom": chrom, "pos": pos, "ref": refs, "alt": alts})
