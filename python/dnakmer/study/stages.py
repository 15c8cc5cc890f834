"""The stages of :func:`dnakmer.study.interrogate.interrogate`, one method each.

Each stage method receives its own folder and writes only there; the caller marks the
folder complete afterwards. Models are loaded once per stage (stages may be skipped, so
nothing is shared between them except files).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from dnakmer._io import atomic_open, write_json
from dnakmer.genome import Genome

if TYPE_CHECKING:
    from dnakmer.models import LoadedModel
    from dnakmer.study.budget import Budget

__all__ = ["Run", "plot_composition", "run_stage", "worker_init"]

_BASE_COLUMNS = ("a", "c", "g", "t", "n", "other")


def plot_composition(stats: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """PNG of each record's base composition (fractions of A, C, G, T, N, other), at
    most 40 records (the longest)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    top = stats.sort("length", descending=True).head(40)
    lengths = np.maximum(top["length"].to_numpy().astype(np.float64), 1.0)
    fig, ax = plt.subplots(figsize=(7.5, 0.35 * top.height + 1.8), constrained_layout=True)
    left = np.zeros(top.height)
    names = [n if len(n) <= 30 else n[:27] + "..." for n in top["name"].to_list()]
    for col in _BASE_COLUMNS:
        frac = top[col].to_numpy().astype(np.float64) / lengths
        ax.barh(names, frac, left=left, label=col.upper() if len(col) == 1 else col)
        left += frac
    ax.set(xlabel="fraction of bases", xlim=(0, 1), title="Base composition per record")
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return Path(path)


class Run:
    """One interrogation run: the genome, the models by label, parameters and budget."""

    def __init__(
        self,
        out: Path,
        genome: Genome,
        models: dict[str, Path],
        params: dict[str, Any],
        budget: Budget,
        quiet: bool,
        trust_remote_code: bool = False,
    ) -> None:
        self.trust_remote_code = trust_remote_code
        self._base_markov: pl.DataFrame | None = None
        self.out = out
        self.genome = genome
        self.models = models
        self.params = params
        self.budget = budget
        self.quiet = quiet
        self.note: Callable[[str], None] = lambda text: None

    def _load(self, label: str) -> LoadedModel:
        from dnakmer.models import load

        device = None if self.budget.device == "auto" else self.budget.device
        return load(self.models[label], device=device, trust_remote_code=self.trust_remote_code)

    def base_markov(self) -> pl.DataFrame:
        """The Markov chains on the masked-bases windows and spans: the same for every
        model, so they are fitted once a run."""
        from dnakmer.probes.masked_bases import markov_span_table

        if self._base_markov is None:
            self.note("Markov chains on the masked bases")
            self._base_markov = markov_span_table(
                self.genome,
                span=self.budget.base_span,
                n_windows=self.budget.base_windows,
                window_bases=self.params["base_window_bases"],
                seed=0,
            )
        return self._base_markov

    def genome_stats(self, folder: Path) -> None:
        """``stats.parquet``, ``stats.json`` and ``composition.png``."""
        stats = self.genome.stats()
        with atomic_open(folder / "stats.parquet", "wb") as f:
            stats.write_parquet(f)
        write_json(folder / "stats.json", stats.to_dicts())
        plot_composition(stats, folder / "composition.png")

    def mask(self, label: str, folder: Path) -> None:
        """Masked bases of every masked LM and of its random-init twin (``bases/``,
        ``bases_random/``); the masked-token analysis against the neighbour rule for
        overlapping k-mers, or ``skipped.json`` with the reason it does not apply."""
        from dnakmer.models import random_init
        from dnakmer.probes.masked_bases import masked_base_analysis
        from dnakmer.probes.masked_tokens import mask_analysis, rule_skip_reason

        loaded = self._load(label)
        if loaded.has_mlm_head and getattr(loaded.tokenizer, "mask_token_id", None) is not None:
            b = self.budget
            markov = self.base_markov()
            twins = (("bases", "pretrained", loaded), ("bases_random", "random init", None))
            for name, init, model in twins:
                self.note(f"masked bases ({init})")
                model = model or random_init(loaded, 1)
                result = masked_base_analysis(
                    model,
                    self.genome,
                    span=b.base_span,
                    n_windows=b.base_windows,
                    window_bases=self.params["base_window_bases"],
                    seed=0,
                    batch_size=b.batch_size,
                    markov=markov,
                )
                result.save(folder / name)
        reason = rule_skip_reason(loaded)
        if reason is not None:
            write_json(folder / "skipped.json", {"model": label, "reason": reason})
            return
        result = mask_analysis(
            loaded,
            self.genome,
            n_windows=self.budget.mask_windows,
            window_tokens=min(self.budget.mask_window_tokens, loaded.max_tokens - 2),
            batch_size=self.budget.batch_size,
            seed=0,
        )
        result.save(folder)

    def embed(self, label: str, folder: Path) -> None:
        """Static and contextual embedding analysis (tables, ``summary.json``, figures);
        for vocabularies that are not k-mers of one length, the static embeddings'
        relation to edit distance, token length, GC and frequency."""
        from dnakmer.probes.embedding_analysis import embedding_report, token_embedding_report

        loaded = self._load(label)
        if not loaded.is_kmer:
            token_embedding_report(loaded, self.genome, folder, seed=0)
            return
        embedding_report(
            loaded,
            self.genome,
            folder,
            n_windows=self.budget.embed_windows,
            window_tokens=min(self.budget.embed_window_tokens, loaded.max_tokens - 2),
            batch_size=self.budget.batch_size,
            seed=0,
        )

    def dataset_dirs(self) -> list[Path]:
        return [self.out / "datasets" / f"k{k}" for k in self.params["ks"]]

    def datasets(self, folder: Path) -> None:
        """One next-k-mer dataset per k, stored as bases: every model tokenizes the same
        ``context_nt`` bases itself."""
        from dnakmer.datasets import nextkmer

        b = self.budget
        for k, target in zip(self.params["ks"], self.dataset_dirs(), strict=True):
            ds = nextkmer.build(
                self.genome,
                k,
                self.params["context_nt"],
                None,
                n_train=b.n_train,
                n_val=b.n_val,
                n_test=b.n_test,
                seed=0,
            )
            ds.save(target, overwrite=True)

    def baselines(self, folder: Path) -> None:
        """Uniform, prior and Markov baselines for every k: ``baselines.parquet/.json/.png``."""
        from dnakmer.datasets.baselines import baselines, save_baselines
        from dnakmer.datasets.nextkmer import NextKmerDataset

        frames = []
        for path in self.dataset_dirs():
            ds = NextKmerDataset.load(path)
            ds.genome = self.genome  # already open and checked by sha256
            frames.append(baselines(ds, self.budget.markov_orders, ks=[ds.k], seed=0))
        save_baselines(pl.concat(frames, how="diagonal_relaxed"), folder)

    def finetune(self, label: str, folder: Path) -> None:
        """Pretrained (and random-init) fine-tuning on every k and seed, next to the
        baselines: ``comparison.parquet/.json``, ``runs.parquet``, ``accuracy_vs_k.png``."""
        from dnakmer.probes.nextkmer import (
            add_probe_rows,
            benchmark_model,
            comparison_table,
            linear_probe,
            write_comparison,
        )

        runs = benchmark_model(
            self.models[label],
            self.dataset_dirs(),
            folder,
            inits=self.budget.finetune_inits,
            seeds=self.params["seeds"],
            options=self.budget.train_options(quiet=True),
            pooling=self.budget.pooling,
            resume=True,
            trust_remote_code=self.trust_remote_code,
            on_run=lambda done, total, what: self.note(f"{what} ({done + 1}/{total})"),
        )
        base = pl.read_parquet(self.out / "baselines" / "baselines.parquet")
        table = comparison_table(runs, base, label)
        runs = runs.with_columns(protocol=pl.lit("fine-tuned"))
        if self.budget.linear_probe:
            self.note("linear probe of the frozen encoder")
            probes = linear_probe(
                self.models[label],
                self.dataset_dirs(),
                pooling=self.budget.pooling,
                seed=0,
                batch_size=self.budget.batch_size,
                device=None if self.budget.device == "auto" else self.budget.device,
                trust_remote_code=self.trust_remote_code,
            )
            table = add_probe_rows(table, probes, base, label)
            runs = pl.concat(
                [runs, probes.with_columns(protocol=pl.lit("linear probe"))],
                how="diagonal_relaxed",
            )
        write_comparison(table, runs, folder)

    def report(self) -> dict[str, Any]:
        """``report.html``, ``summary.md`` and ``findings.json``; returns the findings."""
        from dnakmer.study.report import write_outputs

        return write_outputs(self.out, list(self.models), self.params)


def worker_init(threads: int) -> None:
    """Start of a worker process of a parallel run: its share of the torch threads, and
    the heavy imports done while the main process runs the shared stages."""
    import sklearn.linear_model  # noqa: F401
    import torch
    import transformers
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    _limits.append(threadpool_limits(threads))  # NumPy's and sklearn's too, for good
    transformers.Trainer  # noqa: B018  (imports the trainer module)


_limits: list[Any] = []


def run_stage(spec: dict[str, Any], stage: str, label: str) -> None:
    """Run one model's ``stage`` (``mask``, ``embed`` or ``finetune``) in a worker process
    into ``out/<stage>/<label>``; the caller marks it complete. ``spec`` holds what
    :class:`Run` is made of: ``out``, ``genome`` (path), ``models``, ``params``,
    ``budget``, ``trust_remote_code`` and the masked-bases ``markov`` table (or None)."""
    from dnakmer.models.quiet import quiet_transformers

    run = Run(
        spec["out"],
        Genome.open(spec["genome"]),
        spec["models"],
        spec["params"],
        spec["budget"],
        True,
        spec["trust_remote_code"],
    )
    run._base_markov = spec["markov"]
    with quiet_transformers(True, errors_only=True):
        getattr(run, stage)(label, spec["out"] / stage / label)
