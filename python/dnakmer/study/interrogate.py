"""The whole study in one call: what do DNA language models learn from a genome?

:func:`interrogate` runs, for one genome and one or more checkpoint folders, the stages

1. ``genome``: per-record composition;
2. ``mask/<model>``: masked-token accuracy against the neighbour rule
   (:func:`dnakmer.probes.masked_tokens.mask_analysis`; overlapping k-mer masked LMs only);
3. ``embed/<model>``: static and contextual embedding analysis
   (:func:`dnakmer.probes.embedding_analysis.embedding_report`);
4. ``datasets``: next-k-mer datasets for every k, stored as raw bases so that each model
   tokenizes the same context (:func:`dnakmer.datasets.nextkmer.build`);
5. ``baselines``: uniform, class prior and Markov chains on those datasets;
6. ``finetune/<model>``: fine-tuning of each model and of its random-init control
   (:func:`dnakmer.probes.nextkmer.benchmark_model`);
7. ``report``: ``report.html``, ``summary.md`` and ``findings.json``.

Every stage writes into its own subfolder of the run folder and drops a ``COMPLETE``
marker there last; a re-run skips stages whose marker exists, so an interrupted run
continues where it stopped. ``manifest.json`` records inputs, models, parameters, seeds
and versions; a re-run with different parameters is refused rather than mixed in.

The default :class:`Budget` is sized for a laptop CPU (minutes). To scale up, pass a
larger one, e.g. ``Budget.paper()`` (DNABERT-sized contexts, 100k training windows,
thousands of steps) on a GPU.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import os
import platform
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from dnakmer import __version__
from dnakmer._io import atomic_open, output_lock, write_json
from dnakmer.models.quiet import quiet_transformers
from dnakmer.study.budget import Budget

__all__ = ["STAGE_MARKER", "Budget", "InterrogateResult", "context_length", "interrogate"]

STAGE_MARKER = "COMPLETE"
_MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "vocab.txt",
    "dnakmer.json",
)


@dataclass
class InterrogateResult:
    """Where the run went and what it found.

    Attributes
    ----------
    out_dir : pathlib.Path
    stages : dict of str to str
        Each stage's name and ``"ran"`` or ``"skipped"`` (completed by an earlier run).
    findings : dict
        The numbers behind ``summary.md`` (also in ``findings.json``).
    report : pathlib.Path
        ``report.html``.
    """

    out_dir: Path
    stages: dict[str, str]
    findings: dict[str, Any]
    report: Path


def _model_labels(models: Sequence[Path]) -> list[str]:
    """Folder names, made unique with a numeric suffix."""
    labels: list[str] = []
    for path in models:
        base = path.resolve().name or "model"
        label, n = base, 2
        while label in labels:
            label, n = f"{base}-{n}", n + 1
        labels.append(label)
    return labels


def _model_info(path: Path, trust_remote_code: bool = False) -> dict[str, Any]:
    """What the study needs to know of a model before loading its weights: how its
    tokenizer turns bases into tokens and how many tokens its positions hold."""
    from types import SimpleNamespace

    from dnakmer import _core
    from dnakmer.models import load_tokenizer, token_limit
    from dnakmer.models.checkpoint import read_json
    from dnakmer.models.encoding import BaseEncoder
    from dnakmer.tokenizer import KmerTokenizer

    tok = load_tokenizer(path, trust_remote_code=trust_remote_code)
    encoder = BaseEncoder(tok, path.name)
    config = read_json(path / "config.json")
    files = {f: _core.sha256_file(path / f) for f in _MODEL_FILES if (path / f).is_file()}
    if isinstance(tok, KmerTokenizer):
        k, stride = int(tok.k), int(tok.stride)
        family = (
            "nucleotide" if k == 1 else f"{'overlapping' if stride == 1 else 'non-overlapping'}"
        )
    elif encoder.kind == "greedy":
        k, stride = encoder.k, encoder.k
        family = "nucleotide" if k == 1 else "non-overlapping"
    else:
        k, stride, family = None, None, "variable-length"
    return {
        "path": str(path.resolve()),
        "tokenizer": encoder.kind,
        "family": family,
        "k": k,
        "stride": stride,
        "frame": list(encoder.frame),
        "max_positions": int(config.get("max_position_embeddings", 512)),
        "max_tokens": min(token_limit(SimpleNamespace(**config)), 1 << 30),
        "sha256": files,
    }


def _tokens_for(info: dict[str, Any], bases: int) -> int:
    """Most tokens (special ones included) a model makes of ``bases`` bases."""
    prefix, suffix = info.get("frame", (1, 1))
    kind = info.get("tokenizer", "kmer")
    if kind == "kmer":
        return (bases - info["k"]) // info["stride"] + 1 + prefix + suffix
    if kind == "greedy":
        return bases // info["k"] + bases % info["k"] + prefix + suffix
    return bases + prefix + suffix  # at most one token per base


def context_length(models: Sequence[dict[str, Any]], wanted: int | None) -> int:
    """The next-k-mer context (bases) used for every model.

    The longest length, at most ``wanted``, whose tokens (special ones included) fit
    every model's positions and, for dnakmer's k-mer tokenizers, whose last token ends at
    the last base before the label (``(context - k) % stride == 0``), so no model loses
    bases. Tokenizers whose token count depends on the bases (BPE) are counted at one
    token per base, their most.

    Parameters
    ----------
    models : sequence of dict
        Per model: ``k``, ``stride`` and ``max_positions`` (a k-mer model with
        ``[CLS]``/``[SEP]``), or the ``tokenizer``, ``frame`` and ``max_tokens`` that
        :func:`interrogate` records for any model.
    wanted : int or None
        Upper bound; None for no bound besides the models'.
    """
    if not models:
        raise ValueError("need at least one model")
    if wanted is not None and wanted < 1:
        raise ValueError(f"context_nt must be positive, got {wanted}")
    kmers = [m for m in models if m.get("tokenizer", "kmer") == "kmer"]
    floor = max([m["k"] for m in kmers] + [1])
    top = max(_limit_bases(m) for m in models)
    limit = min(_limit_bases(m) for m in models)
    if wanted is not None:
        limit = min(limit, wanted)
    for length in range(min(limit, top), floor - 1, -1):
        if all(_tokens_for(m, length) <= _max_tokens(m) for m in models) and all(
            (length - m["k"]) % m["stride"] == 0 for m in kmers
        ):
            return length
    raise ValueError(
        f"no context of at most {limit} bases suits every model's tokenizer "
        f"(k, stride: {[(m.get('k'), m.get('stride')) for m in models]})"
    )


def _max_tokens(info: dict[str, Any]) -> int:
    return int(info.get("max_tokens", info.get("max_positions", 512)))


def _limit_bases(info: dict[str, Any]) -> int:
    """Most bases whose tokens fit the model (by the count of :func:`_tokens_for`)."""
    room = _max_tokens(info)
    kind = info.get("tokenizer", "kmer")
    prefix, suffix = info.get("frame", (1, 1))
    if kind == "kmer":
        return (room - prefix - suffix - 1) * info["stride"] + info["k"]
    if kind == "greedy":
        return (room - prefix - suffix) * info["k"]
    return room - prefix - suffix


def _params(
    genome: Path,
    models: list[Path],
    ks: tuple[int, ...],
    seeds: int,
    budget: Budget,
    context: int,
    base_window: int,
) -> dict[str, Any]:
    return {
        "genome": str(genome.resolve()),
        "models": [str(m.resolve()) for m in models],
        "ks": list(ks),
        "seeds": list(range(seeds)),
        "context_nt": context,
        "base_window_bases": base_window,
        "budget": {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in dataclasses.asdict(budget).items()
        },
    }


def _check_previous_run(out: Path, params: dict[str, Any]) -> None:
    """A run folder holds one study: refuse to mix parameters into an existing one."""
    from dnakmer.datasets.store import read_manifest

    if not (out / "manifest.json").is_file():
        return
    old = read_manifest(out).get("parameters")
    if old != params:
        changed = sorted(k for k in params if old is None or old.get(k) != params[k])
        raise ValueError(
            f"{out} holds a run with other parameters ({', '.join(changed)}); "
            "use a new --out folder"
        )


def _versions() -> dict[str, str]:
    import numpy
    import sklearn
    import torch
    import transformers

    return {
        "dnakmer": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "polars": pl.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
    }


class _Stages:
    """Runs stages with a progress line each; skips those already marked complete."""

    def __init__(self, out: Path, quiet: bool) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.out = out
        self.status: dict[str, str] = {}
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            disable=quiet,
        )
        self._current: tuple[Any, str] | None = None

    def run(self, name: str, body: Callable[[Path], Any]) -> Path:
        folder = self.out / name
        if self._skipped(name):
            return folder
        task = self.progress.add_task(name, total=1)
        self._current = (task, name)
        folder.mkdir(parents=True, exist_ok=True)
        body(folder)
        self.progress.update(task, description=name)
        self._mark(name)
        self.progress.update(task, completed=1)
        self.status[name] = "ran"
        return folder

    def run_parallel(self, stages: list[tuple[str, str]], pool: Any, spec: dict[str, Any]) -> None:
        """Run the ``(stage, label)`` stages of single models in the worker ``pool`` (in
        the order given, as workers free up); each is marked complete when it returns.
        The first failure stops the others and is raised here."""
        import queue

        from dnakmer.study.stages import run_stage

        done: queue.SimpleQueue[tuple[str, BaseException | None]] = queue.SimpleQueue()
        tasks = {}
        for stage, label in stages:
            name = f"{stage}/{label}"
            if self._skipped(name):
                continue
            (self.out / name).mkdir(parents=True, exist_ok=True)
            tasks[name] = self.progress.add_task(name, total=1)
            pool.apply_async(
                run_stage,
                (spec, stage, label),
                callback=lambda _, n=name: done.put((n, None)),
                error_callback=lambda e, n=name: done.put((n, e)),
            )
        for _ in range(len(tasks)):
            while True:
                try:  # short waits, so that Ctrl-C is seen at once
                    name, error = done.get(timeout=0.5)
                    break
                except queue.Empty:
                    continue
            if error is not None:
                raise error
            self._mark(name)
            self.progress.update(tasks[name], completed=1)
            self.status[name] = "ran"

    def _skipped(self, name: str) -> bool:
        """Whether stage ``name`` was completed by an earlier run (then shown as such)."""
        if not _done(self.out, name):
            return False
        self.status[name] = "skipped"
        self.progress.add_task(f"{name} (done earlier)", total=1, completed=1)
        return True

    def _mark(self, name: str) -> None:
        when = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        with atomic_open(self.out / name / STAGE_MARKER) as f:
            f.write(when + "\n")

    def note(self, text: str) -> None:
        """Show what the running stage is doing now, after its name."""
        if self._current is not None:
            task, name = self._current
            self.progress.update(task, description=f"{name}: {text}")

    @contextmanager
    def shown(self) -> Iterator[_Stages]:
        with self.progress:
            yield self


def _done(out: Path, stage: str) -> bool:
    return (out / stage / STAGE_MARKER).is_file()


@contextmanager
def _worker_pool(jobs: int) -> Iterator[Any]:
    """``jobs`` worker processes (spawned, so no thread state is inherited), each with
    its share of torch's threads; None for ``jobs`` 1. Started before anything else, so
    that they import torch while the main process checks the models and runs the shared
    stages; stopped when the run ends, fails or is interrupted."""
    if jobs <= 1:
        yield None
        return
    import multiprocessing

    import torch

    from dnakmer.study.stages import worker_init

    threads = max(1, torch.get_num_threads() // jobs)
    pool = multiprocessing.get_context("spawn").Pool(jobs, worker_init, (threads,))
    try:
        yield pool
    finally:
        # Every submitted stage has returned by now (or the run failed): nothing is lost.
        pool.terminate()
        pool.join()


def _checked_inputs(
    genome: str | os.PathLike[str],
    models: Sequence[str | os.PathLike[str]],
    ks: Sequence[int],
    seeds: int,
) -> tuple[Path, list[Path], tuple[int, ...]]:
    """Paths and sorted ks, after checking every argument (nothing is written before)."""
    ks_t = tuple(sorted(set(int(k) for k in ks)))
    if not ks_t or not all(1 <= k <= 8 for k in ks_t):
        raise ValueError(f"ks must be integers from 1 to 8, got {list(ks)}")
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    genome_path = Path(genome)
    if not genome_path.is_file():
        raise FileNotFoundError(f"genome file not found: {genome_path}")
    model_paths = [Path(m) for m in models]
    if not model_paths:
        raise ValueError("give at least one model folder")
    from dnakmer.models.checkpoint import check_folder

    for m in model_paths:
        check_folder(m)
    return genome_path, model_paths, ks_t


def interrogate(
    genome: str | os.PathLike[str],
    models: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    ks: Sequence[int] = (1, 2, 3, 4, 5, 6),
    seeds: int = 1,
    budget: Budget | None = None,
    quiet: bool = False,
    trust_remote_code: bool = False,
    jobs: int = 1,
) -> InterrogateResult:
    """Run the whole study of ``models`` on ``genome`` into the run folder ``out_dir``.

    Parameters
    ----------
    genome : path
        FASTA (plain, gzip or BGZF).
    models : sequence of path
        Checkpoint folders of masked language models of any tokenizer: DNABERT's k-mer
        ``vocab.txt`` (``dnakmer.json`` for a stride other than 1), BPE
        ``tokenizer.json`` (GROVER), the Nucleotide Transformer's ``EsmTokenizer``,
        character vocabularies. The neighbour-rule analysis runs for overlapping k-mers;
        every other probe runs for all.
    out_dir : path
        Run folder; created if needed. Re-running into it skips completed stages.
    ks : sequence of int
        Next-k-mer label lengths, 1 to 8.
    seeds : int
        Fine-tuning seeds per model, k and init (0 .. seeds-1); the analyses use seed 0.
    budget : Budget, optional
        Work per stage (default: :class:`Budget`, minutes on a CPU).
    quiet : bool
        No progress display.
    trust_remote_code : bool
        Let models whose classes are code in their folder run it (refused otherwise).
    jobs : int
        Processes that run the stages of single models (masked tokens and bases,
        embeddings, fine-tuning) side by side, each with its share of torch's threads;
        results are the same as with 1. Worker processes are spawned, so a script that
        calls this with ``jobs`` > 1 needs the ``if __name__ == "__main__":`` guard.

    Returns
    -------
    InterrogateResult

    Raises
    ------
    ValueError
        Bad parameter, a model whose tokenizer does not spell DNA, no context length
        that suits every model, or a run folder made with other parameters.
    ModelError
        A model folder with code of its own and ``trust_remote_code`` off.
    FileNotFoundError
        Missing genome or model folder.
    """

    budget = budget or Budget()
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    genome_path, model_paths, ks_t = _checked_inputs(genome, models, ks, seeds)
    with _worker_pool(min(jobs, 3 * len(model_paths))) as pool:
        return _study(
            genome_path, model_paths, ks_t, seeds, budget, Path(out_dir), quiet,
            trust_remote_code, pool,
        )  # fmt: skip


def _study(
    genome_path: Path,
    model_paths: list[Path],
    ks_t: tuple[int, ...],
    seeds: int,
    budget: Budget,
    out: Path,
    quiet: bool,
    trust_remote_code: bool,
    pool: Any,
) -> InterrogateResult:
    """The body of :func:`interrogate` after its arguments are checked; ``pool`` runs
    the stages of single models when given."""
    from dnakmer.study import stages

    infos = [_model_info(m, trust_remote_code) for m in model_paths]
    context = context_length(infos, budget.context_nt)
    base_window = min([budget.base_window_bases] + [_limit_bases(i) for i in infos])
    params = _params(genome_path, model_paths, ks_t, seeds, budget, context, base_window)
    out.mkdir(parents=True, exist_ok=True)
    # One study writes a run folder at a time.
    with output_lock(out):
        _check_previous_run(out, params)
        labels = _model_labels(model_paths)
        from dnakmer.genome import Genome

        g = Genome.open(genome_path, sha256=True)
        manifest = {
            "kind": "dnakmer.interrogate",
            "genome": {"path": str(genome_path.resolve()), "sha256": g.sha256, "records": g.names},
            "models": dict(zip(labels, infos, strict=True)),
            "parameters": params,
            "versions": _versions(),
        }
        write_json(out / "manifest.json", manifest)
        run = stages.Run(
            out, g, dict(zip(labels, model_paths, strict=True)), params, budget, quiet,
            trust_remote_code,
        )  # fmt: skip
        # The stage display is the progress shown; training bars and library warnings would
        # break it up, so they stay off either way.
        per_model = [(stage, label) for label in labels for stage in ("mask", "embed")]
        # Longest first when they run side by side: fine-tuning, most tokens first.
        tokens = {lab: _tokens_for(i, context) for lab, i in zip(labels, infos, strict=True)}
        tuning = [("finetune", lab) for lab in sorted(labels, key=lambda lab: -tokens[lab])]
        with _Stages(out, quiet).shown() as st, quiet_transformers(True, errors_only=True):
            run.note = st.note
            st.run("genome", run.genome_stats)
            if pool is None:
                for stage, label in per_model:
                    st.run(f"{stage}/{label}", functools.partial(getattr(run, stage), label))
            st.run("datasets", run.datasets)
            st.run("baselines", run.baselines)
            if pool is None:
                for label in labels:
                    st.run(f"finetune/{label}", functools.partial(run.finetune, label))
            else:
                spec = {
                    "out": out,
                    "genome": genome_path,
                    "models": run.models,
                    "params": params,
                    "budget": budget,
                    "trust_remote_code": trust_remote_code,
                    "markov": None
                    if all(_done(out, f"mask/{lab}") for lab in labels)
                    else run.base_markov(),
                }
                st.run_parallel(tuning + per_model, pool, spec)
        # The report is rebuilt on every run: it is cheap and must reflect every stage.
        findings = run.report()
        st.status["report"] = "ran"
        return InterrogateResult(out, st.status, findings, out / "report.html")
