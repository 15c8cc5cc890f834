"""How much work each stage of :func:`dnakmer.study.interrogate.interrogate` does."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TYPICAL_ACCURACY", "Budget", "detectable_difference"]

TYPICAL_ACCURACY = 0.3
"""What a model or Markov chain reaches for the next base or a masked base of a genome
(0.25 to 0.35): the accuracy at which the default budget's precision is sized."""


def detectable_difference(n: int, p: float = TYPICAL_ACCURACY) -> float:
    """Smallest gap between two accuracies near ``p``, each measured on ``n`` items, at
    which their 95 % intervals no longer overlap (twice the interval's half-width): the
    smallest difference a finding of the study can call higher or lower."""
    from dnakmer.confidence import Z95

    return 2 * Z95 * math.sqrt(p * (1 - p) / n)


@dataclass(frozen=True)
class Budget:
    """How much work each stage does. The defaults are sized by the precision a finding
    needs and finish within about 15 minutes on 2 CPU cores for two small models on a
    bacterial genome: evaluation is cheap next to training, so the test split and the
    masked windows hold about 8,000 items each (a 95 % interval of about ±0.01 at
    accuracy 0.3; :meth:`precision` says what a budget can tell apart), while training
    stays short.

    Attributes
    ----------
    mask_windows, mask_window_tokens : int
        Windows sampled for the masked-token analysis and their length in tokens.
    base_windows, base_window_bases, base_span : int
        Masked-bases analysis (every model family): windows, their length in bases
        (lowered to what every model's positions hold) and bases hidden per window
        (:func:`dnakmer.probes.masked_bases.masked_base_analysis`).
    embed_windows, embed_window_tokens : int
        Windows for the contextual embedding analysis and their length in tokens.
    context_nt : int or None
        Next-k-mer context in bases; lowered to the longest that every model's tokenizer
        fits in its positions (and that ends on a token border). None: that longest.
    n_train, n_val, n_test : int
        Next-k-mer samples per split, for every k.
    markov_orders : tuple of int
        Markov chain orders tried as baselines (the best one is reported).
    max_steps, batch_size, eval_every : int
        Fine-tuning steps, samples per step and evaluation interval.
    finetune_inits : tuple of {"pretrained", "random"}
        Which starts are fine-tuned: the pretrained weights and the random-init control
        (same architecture, fresh weights). Dropping ``"random"`` halves the fine-tuning
        time; the linear probe (``linear_probe``) still compares with random init.
    learning_rate : float
    pooling : {"last", "cls", "mean"}
        Hidden state the next-k-mer head reads (see :mod:`dnakmer.models.pooling`).
    linear_probe : bool
        Also fit a linear probe of each frozen encoder, pretrained and random init
        (:func:`dnakmer.probes.nextkmer.linear_probe`): what the representation holds
        before fine-tuning changes it.
    device : {"auto", "cpu", "cuda"}
    """

    mask_windows: int = 1344
    mask_window_tokens: int = 32
    base_windows: int = 1344
    base_window_bases: int = 96
    base_span: int = 6
    embed_windows: int = 32
    embed_window_tokens: int = 32
    context_nt: int | None = 60
    n_train: int = 2000
    n_val: int = 200
    n_test: int = 8000
    markov_orders: tuple[int, ...] = tuple(range(9))
    max_steps: int = 200
    batch_size: int = 32
    eval_every: int = 50
    learning_rate: float = 5e-4
    finetune_inits: tuple[str, ...] = ("pretrained", "random")
    pooling: str = "last"
    linear_probe: bool = True
    device: str = "auto"

    def __post_init__(self) -> None:
        # Checked here so a bad budget fails before the first stage, not after an hour.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and (not isinstance(value, int) or value < 1):
                raise ValueError(f"budget {f.name} must be a positive integer, got {value!r}")
        if self.context_nt is not None and self.context_nt < 1:
            raise ValueError(f"budget context_nt must be positive or None, got {self.context_nt}")
        if not self.learning_rate > 0:
            raise ValueError(f"budget learning_rate must be positive, got {self.learning_rate}")
        if self.pooling not in ("last", "cls", "mean"):
            raise ValueError(f"budget pooling must be last, cls or mean, not {self.pooling!r}")
        if not isinstance(self.linear_probe, bool):
            raise ValueError(
                f"budget linear_probe must be true or false, not {self.linear_probe!r}"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"budget device must be auto, cpu or cuda, not {self.device!r}")
        inits = self.finetune_inits
        if (
            not isinstance(inits, tuple)
            or "pretrained" not in inits
            or not set(inits) <= {"pretrained", "random"}
            or len(set(inits)) != len(inits)
        ):
            raise ValueError(
                "budget finetune_inits must be ('pretrained',) or ('pretrained', 'random'), "
                f"got {inits!r}"
            )
        orders = self.markov_orders
        if (
            not isinstance(orders, tuple)
            or not orders
            or not all(isinstance(m, int) and 0 <= m <= 12 for m in orders)
        ):
            raise ValueError(f"budget markov_orders must be 0 to 12, got {self.markov_orders}")

    @classmethod
    def paper(cls) -> Budget:
        """The scale of Sanabria et al. 2024: DNABERT contexts, 100k windows, 10k steps."""
        return cls(
            mask_windows=2048,
            mask_window_tokens=510,
            base_windows=4096,
            base_window_bases=512,
            embed_windows=512,
            embed_window_tokens=510,
            context_nt=None,
            n_train=100_000,
            n_val=10_000,
            n_test=10_000,
            markov_orders=tuple(range(13)),
            max_steps=10_000,
            batch_size=64,
            eval_every=1000,
            learning_rate=1e-4,
        )

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Budget:
        """A budget from a JSON object of field values; missing fields keep the defaults."""
        import json

        try:
            values = json.loads(Path(path).read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from e
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a JSON object of budget fields")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path}: unknown budget fields {unknown}; known: {sorted(known)}")
        for name in ("markov_orders", "finetune_inits"):
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        return cls(**values)

    def precision(self, k: int = 6, smallest_k: int = 1) -> list[dict[str, Any]]:
        """What this budget can tell apart, per probe: items each accuracy is measured
        on and the smallest difference between two accuracies near 0.3 that their 95 %
        intervals separate (:func:`detectable_difference`); ``k`` is the length of the
        masked k-mers (masked tokens of a DNABERT span), ``smallest_k`` the shortest
        next-k-mer label of the run."""
        items = [
            ("next-k-mer", self.n_test, f"test windows at k = {smallest_k}"),
            ("masked bases", self.base_windows * self.base_span, "hidden bases"),
            ("masked tokens", self.mask_windows * k, f"masked {k}-mers"),
        ]
        return [
            {"probe": probe, "n": n, "items": what, "difference": detectable_difference(n)}
            for probe, n, what in items
        ]

    def train_options(self, quiet: bool) -> Any:
        """The fine-tuning :class:`~dnakmer.training.trainer.TrainOptions` of this budget."""
        from dnakmer.training.trainer import TrainOptions

        return TrainOptions(
            max_steps=self.max_steps,
            batch_size=self.batch_size,
            eval_every=min(self.eval_every, self.max_steps),
            log_every=min(self.eval_every, self.max_steps),
            learning_rate=self.learning_rate,
            device=self.device,
            save_total_limit=1,
            quiet=quiet,
        )
