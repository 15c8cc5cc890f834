"""Fine-tuning sequence classifiers: the next-k-mer benchmark (4^k classes) and
genome-biology classification tasks.

Inputs are dnakmer dataset folders (``dnakmer nextkmer build``, ``dnakmer tasks build``)
or DNABERT's ``train.tsv``/``dev.tsv`` files. Token ids stay memory-mapped and are cast to
int64 per batch. Training runs on Hugging Face ``Trainer`` (see :mod:`dnakmer.training.trainer`):
bf16 autocast on GPU, fp32 on CPU, DDP under ``torchrun``, resumable checkpoints.

The training order is a seeded permutation of the training rows fixed before training
and read sequentially, so a resumed run, or the same global batch spread over several
processes, sees exactly the batches of an uninterrupted single-process run.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from dnakmer._io import staged_files, write_json
from dnakmer.datasets.nextkmer import KIND as NEXTKMER_KIND
from dnakmer.datasets.nextkmer import check_values as nextkmer_values
from dnakmer.datasets.store import load_arrays, read_manifest
from dnakmer.datasets.tasks.build import TASK_KIND
from dnakmer.datasets.tasks.build import check_values as task_values
from dnakmer.models.checkpoint import check_remote_code, token_limit
from dnakmer.models.pooling import use_pooling
from dnakmer.models.quiet import quiet_transformers
from dnakmer.tokenizer import KmerTokenizer
from dnakmer.training.trainer import (
    TrainOptions,
    is_main_process,
    last_complete_checkpoint,
    locked_output,
    mark_complete_callback,
    progress_callbacks,
    training_arguments,
)

__all__ = [
    "ClassificationData",
    "FinetuneResult",
    "classification_metrics",
    "data_from_bed",
    "data_from_dataset",
    "data_from_tsv",
    "finetune",
]


@dataclass
class ClassificationData:
    """Token ids and labels per split, ready for training.

    ``ids[split]`` is (n, T) integers (possibly memory-mapped), ``labels[split]`` (n,)
    ints in ``0 .. num_labels - 1``; splits are ``train``, ``val`` and optionally ``test``.
    ``attention_mask[split]`` (n, T), when given, marks real tokens (rows of different
    token counts, e.g. BPE); without it every id other than ``pad_token_id`` is real.
    ``frame`` is the number of special tokens before and after a row's own tokens
    (``[CLS] ... [SEP]``: (1, 1); Nucleotide Transformer's ``<cls> ...``: (1, 0)).
    ``source`` says where the samples came from; its ``window_bases`` (bases per sample
    when every sample has the same length, else None) is kept in the classifier's
    ``results.json``, where variant scoring finds the window a classifier reads.
    """

    ids: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    num_labels: int
    pad_token_id: int
    label_names: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)
    attention_mask: dict[str, np.ndarray] | None = None
    frame: tuple[int, int] = (1, 1)

    def mask(self, split: str) -> np.ndarray:
        """Attention mask of a split (1 on real tokens)."""
        if self.attention_mask is not None:
            return self.attention_mask[split]
        return (np.asarray(self.ids[split]) != self.pad_token_id).astype(np.uint8)


@dataclass
class FinetuneResult:
    """Metrics on the held-out split(s) and the training log."""

    out_dir: Path
    metrics: dict[str, float]
    history: pl.DataFrame


def _split_rows(split: np.ndarray, manifest: dict[str, Any]) -> dict[str, np.ndarray]:
    """Row indices per split; accepts string splits (``dev`` = ``val``) or uint8 codes."""
    split = np.asarray(split)
    if split.dtype.kind in "USO":
        names = {"train": "train", "val": "val", "dev": "val", "test": "test"}
        out = {v: np.flatnonzero(split == k) for k, v in names.items() if (split == k).any()}
    else:
        codes = manifest.get("split_codes", {"train": 0, "val": 1, "test": 2})
        out = {name: np.flatnonzero(split == code) for name, code in codes.items()}
    return {k: v for k, v in out.items() if len(v)}


def _check_vocab(manifest: dict[str, Any], tok: Any, where: Path) -> None:
    info = manifest.get("tokenizer")
    if not info:
        return
    if (
        not isinstance(tok, KmerTokenizer)
        or info.get("vocab_sha256") != tok.vocab_sha256
        or info["stride"] != tok.stride
    ):
        raise ValueError(
            f"{where} was tokenized with a different vocabulary or stride than the model "
            "(rebuild it with `dnakmer nextkmer build --raw`: raw bases suit every model)"
        )


def data_from_dataset(
    data_dir: str | os.PathLike[str], tok: Any, *, model: str = "model"
) -> ClassificationData:
    """Load a dnakmer dataset folder (next-k-mer or annotation task) for a model.

    Token ids are used as stored when they were made with the model's vocabulary. A
    dataset of raw bases (uint8 codes, ``nextkmer build --raw``) is tokenized here with
    the model's own tokenizer, whatever it is (:mod:`dnakmer.models.encoding`): a k-mer
    vocabulary through the Rust core, BPE, character and Nucleotide Transformer
    vocabularies as their Hugging Face tokenizer does. Every model therefore sees the
    same bases, labels and splits.

    Parameters
    ----------
    data_dir : path
    tok : KmerTokenizer or transformers tokenizer
        The model's tokenizer (:func:`dnakmer.models.load_tokenizer`).
    model : str
        The model's name, for error messages.
    """
    path = Path(data_dir)
    manifest = read_manifest(path)
    arrays = load_arrays(path)
    if manifest.get("kind") == NEXTKMER_KIND:
        nextkmer_values(path, manifest, arrays)
    elif manifest.get("kind") == TASK_KIND:
        task_values(path, manifest, arrays)
    rows = _split_rows(arrays["split"], manifest)
    if "train" not in rows or "val" not in rows:
        raise ValueError(f"{path} needs non-empty train and validation splits, has {sorted(rows)}")
    labels = np.asarray(arrays["labels"])
    bases = manifest.get("input") == "bases" or "input_ids" not in arrays
    source_ids = arrays["input_ids"] if "input_ids" in arrays else arrays["sequence"]
    masks: dict[str, np.ndarray] | None = None
    frame = (1, 1)
    if bases:
        if tok is None:
            raise ValueError(f"{path}: a dataset of raw bases needs the model's tokenizer")
        from dnakmer.models.encoding import BaseEncoder

        encoder = BaseEncoder(tok, model)
        encoded = {s: encoder.encode(np.asarray(source_ids[r])) for s, r in rows.items()}
        width = max(e.input_ids.shape[1] for e in encoded.values())
        ids, masks = {}, {}
        for s, e in encoded.items():
            extra = width - e.input_ids.shape[1]
            ids[s] = np.pad(e.input_ids, ((0, 0), (0, extra)), constant_values=encoder.pad_token_id)
            masks[s] = np.pad(e.attention_mask, ((0, 0), (0, extra)))
        frame = encoder.frame
        pad = encoder.pad_token_id
    else:
        _check_vocab(manifest, tok, path)
        ids = {s: source_ids[r] for s, r in rows.items()}
        pad = tok.pad_token_id if tok is not None else 0
    if manifest.get("kind") == "dnakmer.nextkmer":
        num_labels = 4 ** int(manifest["k"])
        names: list[str] = []
    else:
        names = [str(x) for x in manifest.get("label_names", [])]
        num_labels = len(names) or int(labels.max()) + 1
    return ClassificationData(
        ids=ids,
        labels={s: labels[r] for s, r in rows.items()},
        num_labels=num_labels,
        pad_token_id=pad,
        attention_mask=masks,
        frame=frame,
        label_names=names,
        source={
            "dataset": str(path.resolve()),
            "kind": manifest.get("kind"),
            "k": manifest.get("k"),
            "task": manifest.get("task"),
            "window_bases": int(np.asarray(source_ids).shape[1])
            if bases
            else manifest.get("window_length") or manifest.get("context_nt"),
        },
    )


def _read_tsv(path: Path) -> tuple[list[str], list[str]]:
    frame = pl.read_csv(path, separator="\t", infer_schema=False, quote_char=None)
    if frame.columns[:2] != ["sequence", "label"]:
        raise ValueError(f"{path}: expected a header 'sequence<TAB>label', got {frame.columns}")
    seqs = [s.strip() for s in frame["sequence"].to_list()]
    return [_join_kmers(s) if " " in s else s for s in seqs], frame["label"].to_list()


def _common_length(seqs: Iterable[str]) -> int | None:
    """The length in bases of every sequence when they all have one, else None."""
    lengths = {len(_join_kmers(x) if " " in x else x) for x in seqs}
    return lengths.pop() if len(lengths) == 1 else None


def _join_kmers(spaced: str) -> str:
    """Raw sequence from DNABERT's space-joined overlapping k-mers."""
    kmers = spaced.split()
    return kmers[0] + "".join(x[-1] for x in kmers[1:])


def data_from_tsv(
    train: str | os.PathLike[str],
    dev: str | os.PathLike[str],
    tok: KmerTokenizer,
    *,
    test: str | os.PathLike[str] | None = None,
    max_length: int = 512,
) -> ClassificationData:
    """DNABERT's fine-tuning files: header ``sequence<TAB>label``, one sample per line,
    sequences raw or as space-joined overlapping k-mers; labels any strings or ints."""
    files = {"train": Path(train), "val": Path(dev)} | ({"test": Path(test)} if test else {})
    seqs, raw = {}, {}
    for split, p in files.items():
        seqs[split], raw[split] = _read_tsv(p)
    names = sorted({str(x) for v in raw.values() for x in v}, key=lambda x: (len(x), x))
    index = {n: i for i, n in enumerate(names)}
    ids, labels = {}, {}
    for split in files:
        enc = tok.encode_batch(seqs[split], max_length=max_length, padding="longest")
        ids[split] = enc["input_ids"]
        labels[split] = np.array([index[str(x)] for x in raw[split]], dtype=np.int64)
    return ClassificationData(
        ids=ids,
        labels=labels,
        num_labels=len(names),
        pad_token_id=tok.pad_token_id,
        label_names=names,
        source={k: str(v.resolve()) for k, v in files.items()}
        | {"window_bases": _common_length(s for v in seqs.values() for s in v)},
    )


class _Rows:
    """Map-style dataset over (possibly memory-mapped) id rows in a fixed order."""

    def __init__(
        self,
        ids: np.ndarray,
        labels: np.ndarray,
        order: np.ndarray,
        mask: np.ndarray | None = None,
    ) -> None:
        self.ids, self.labels, self.order, self.mask = ids, labels, order, mask

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> dict[str, Any]:
        r = int(self.order[i])
        row = {"input_ids": np.asarray(self.ids[r]), "labels": int(self.labels[r])}
        if self.mask is not None:
            row["attention_mask"] = np.asarray(self.mask[r])
        return row


@dataclass
class _Collate:
    pad_token_id: int

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        ids = torch.from_numpy(np.stack([r["input_ids"] for r in rows]).astype(np.int64))
        if "attention_mask" in rows[0]:
            mask = torch.from_numpy(np.stack([r["attention_mask"] for r in rows]).astype(np.int64))
        else:
            mask = (ids != self.pad_token_id).long()
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "labels": torch.tensor([r["labels"] for r in rows], dtype=torch.long),
        }


def training_order(n: int, samples_needed: int, seed: int) -> np.ndarray:
    """Concatenated seeded permutations of ``range(n)`` covering ``samples_needed``."""
    rng = np.random.default_rng(seed)
    epochs = max(1, -(-samples_needed // max(n, 1)))
    return np.concatenate([rng.permutation(n) for _ in range(epochs)])


# Up to this many classes the evaluation keeps full probabilities (for AUC).
_FULL_PROBS_MAX = 16
_LN2 = float(np.log(2.0))


def _reduce_logits(num_labels: int) -> Any:
    """Per sample: top-5 classes, log2 p(true) and, for few classes, all log-probs."""

    def reduce(logits: Any, labels: Any) -> Any:
        import torch

        logp = torch.log_softmax(logits.float(), dim=-1)
        top = logp.topk(min(5, num_labels), dim=-1).indices.float()
        true = logp.gather(-1, labels.clamp(min=0)[:, None]) / _LN2
        parts = [top, true] + ([logp] if num_labels <= _FULL_PROBS_MAX else [])
        return torch.cat(parts, dim=-1)

    return reduce


def classification_metrics(y: np.ndarray, reduced: np.ndarray, num_labels: int) -> dict[str, float]:
    """Accuracy, top-5 accuracy, MCC, macro-F1, cross-entropy (bits) and, for at most 16
    classes, ROC AUC (binary, or one-vs-rest macro) — the same definitions as the
    next-k-mer baselines (:func:`dnakmer.datasets.baselines.prediction_metrics`) — plus
    ``majority_share`` (share of samples given the most common prediction) and
    ``distinct_predictions`` (classes predicted at least once)."""
    from dnakmer.datasets.baselines import prediction_metrics

    m = min(5, num_labels)
    y = np.asarray(y, dtype=np.int64)
    top = reduced[:, :m].astype(np.int64)
    out = prediction_metrics(y, top, reduced[:, m])
    # How varied the answers are: a classifier that collapsed onto one class (a common
    # failure of short fine-tuning) has a majority share near 1.
    counts = np.bincount(top[:, 0], minlength=num_labels)
    out["majority_share"] = float(counts.max() / max(len(y), 1))
    out["distinct_predictions"] = float((counts > 0).sum())
    if num_labels <= _FULL_PROBS_MAX and len(np.unique(y)) > 1:
        from sklearn.metrics import roc_auc_score

        probs = np.exp(reduced[:, m + 1 :])
        present = np.unique(y)
        if num_labels == 2:
            out["auc"] = float(roc_auc_score(y, probs[:, 1]))
        elif len(present) == num_labels:
            out["auc"] = float(roc_auc_score(y, probs, multi_class="ovr", average="macro"))
    return out


def _classifier(
    model_dir: Path,
    num_labels: int,
    init: str,
    seed: int,
    freeze: bool,
    names: list[str],
    pooling: str = "cls",
    frame: tuple[int, int] = (1, 1),
    trust_remote_code: bool = False,
) -> Any:
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    if init not in ("pretrained", "random"):
        raise ValueError(f"init must be 'pretrained' or 'random', got {init!r}")
    check_remote_code(model_dir, trust_remote_code)
    config = AutoConfig.from_pretrained(
        model_dir, local_files_only=True, trust_remote_code=trust_remote_code
    )
    config.num_labels = num_labels
    config.problem_type = "single_label_classification"
    if names:
        config.id2label = dict(enumerate(names))
        config.label2id = {n: i for i, n in enumerate(names)}
    torch.manual_seed(seed)
    if init == "random":
        model = AutoModelForSequenceClassification.from_config(
            config, trust_remote_code=trust_remote_code
        )
    else:
        safetensors = any(model_dir.glob("*.safetensors"))
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir,
            config=config,
            local_files_only=True,
            trust_remote_code=trust_remote_code,
            **({"use_safetensors": True} if safetensors else {}),
        )
    use_pooling(model, pooling, frame)
    if freeze:
        for p in model.base_model.parameters():
            p.requires_grad_(False)
    # The classifier's loss is a mean over its batch and ignores ``num_items_in_batch``;
    # declaring so makes the Trainer divide it by the gradient-accumulation steps.
    model.accepts_loss_kwargs = False
    return model


def finetune(
    data: ClassificationData,
    model_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    init: str = "pretrained",
    options: TrainOptions | None = None,
    freeze_encoder: bool = False,
    resume: bool = False,
    pooling: str = "cls",
    trust_remote_code: bool = False,
) -> FinetuneResult:
    """Fine-tune the encoder of ``model_dir`` with a ``num_labels``-way classification head.

    Parameters
    ----------
    data : ClassificationData
        From :func:`data_from_dataset` or :func:`data_from_tsv`.
    model_dir : path
        Hugging Face checkpoint folder (its weights are ignored with ``init="random"``).
    out_dir : path
        Receives ``checkpoints/`` (resumable), the best model and ``results.json``.
    init : {"pretrained", "random"}
        ``"random"`` trains the same architecture from scratch: the control that tells
        what pretraining contributed.
    options : TrainOptions
    freeze_encoder : bool
        Train only the classification head (a linear probe of the encoder).
    resume : bool
        Continue from the newest complete checkpoint in ``out_dir/checkpoints``.
    pooling : {"cls", "last", "mean"}
        Hidden state the classification head reads: ``[CLS]`` through the pretrained
        pooler (Hugging Face's default), the last token before ``[SEP]``, or the mean of
        the tokens (see :mod:`dnakmer.models.pooling`).
    trust_remote_code : bool
        Let a model whose classes are code in its folder run that code (refused
        otherwise).

    Returns
    -------
    FinetuneResult
        ``metrics`` holds ``val_*`` and (with a test split) ``test_*`` metrics of the
        best checkpoint (lowest validation loss).
    """
    from transformers import EarlyStoppingCallback, Trainer

    opts = options or TrainOptions()
    out, folder = Path(out_dir), Path(model_dir)
    with locked_output(out):
        ckpt = out / "checkpoints"
        resume_from = last_complete_checkpoint(ckpt, clean=is_main_process()) if resume else None
        if not resume and is_main_process() and ckpt.exists():
            shutil.rmtree(ckpt)
        with quiet_transformers(True, errors_only=opts.quiet):
            model = _classifier(
                folder,
                data.num_labels,
                init,
                opts.seed,
                freeze_encoder,
                data.label_names,
                pooling,
                data.frame,
                trust_remote_code,
            )
        limit = token_limit(model.config)
        longest = max(int(v.shape[1]) for v in data.ids.values())
        if longest > limit:
            raise ValueError(
                f"{folder.name}: windows take up to {longest} tokens but the model's positions "
                f"hold at most {limit}; build the dataset with a shorter --context"
            )
        world = int(os.environ.get("WORLD_SIZE", "1"))
        order = training_order(
            len(data.labels["train"]),
            opts.max_steps * opts.batch_size * opts.grad_accum * world,
            opts.seed,
        )
        datasets = {
            s: _Rows(
                data.ids[s],
                data.labels[s],
                order if s == "train" else np.arange(len(data.labels[s])),
                data.attention_mask[s] if data.attention_mask is not None else None,
            )
            for s in data.ids
        }
        args = training_arguments(
            ckpt,
            opts,
            metric_for_best_model="eval_loss",
            greater_is_better=False,
            remove_unused_columns=False,
            train_sampling_strategy="sequential",
        )
        callbacks = [mark_complete_callback()]
        if opts.early_stopping:
            callbacks.append(EarlyStoppingCallback(opts.early_stopping))
        trainer = Trainer(
            model=model,
            args=args,
            data_collator=_Collate(data.pad_token_id),
            train_dataset=datasets["train"],
            eval_dataset=datasets["val"],
            compute_metrics=lambda p: classification_metrics(
                p.label_ids, p.predictions, data.num_labels
            ),
            preprocess_logits_for_metrics=_reduce_logits(data.num_labels),
            callbacks=callbacks,
        )
        progress_callbacks(trainer)
        with quiet_transformers(True, errors_only=opts.quiet):
            trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
            metrics = {
                k: float(v)
                for k, v in trainer.evaluate(datasets["val"], metric_key_prefix="val").items()
            }
            if "test" in datasets:
                test = trainer.evaluate(datasets["test"], metric_key_prefix="test")
                metrics |= {k: float(v) for k, v in test.items()}
            history = (
                pl.DataFrame(trainer.state.log_history)
                if trainer.state.log_history
                else pl.DataFrame()
            )
            if trainer.is_world_process_zero():
                _save_final(
                    out,
                    trainer,
                    folder,
                    {
                        "init": init,
                        "freeze_encoder": freeze_encoder,
                        "pooling": pooling,
                        "options": asdict(opts),
                        "num_labels": data.num_labels,
                        "label_names": data.label_names,
                        "source": data.source,
                        "model": str(folder.resolve()),
                        "samples": {s: len(v) for s, v in data.labels.items()},
                    },
                    metrics,
                )
        return FinetuneResult(out, metrics, history)


def _save_final(
    out: Path, trainer: Any, model_dir: Path, params: dict[str, Any], metrics: dict[str, float]
) -> None:
    """Best model and ``results.json``, moved into ``out`` only once fully written."""
    tokenizer_files = (
        "vocab.txt",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "dnakmer.json",
        "tokenizer.json",
    )
    with staged_files(out) as tmp:
        trainer.model.save_pretrained(tmp)
        for name in tokenizer_files:
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, tmp / name)
        write_json(
            tmp / "results.json",
            {"params": params, "metrics": metrics, "log_history": trainer.state.log_history},
        )


def seed_summary(per_seed: list[dict[str, float]], prefix: str = "test_") -> pl.DataFrame:
    """Mean and 95 % confidence interval (Student t) of each metric over seeds.

    Returns
    -------
    polars.DataFrame
        Columns ``metric``, ``mean``, ``ci95`` (half-width; null for one seed), ``n``.
    """
    from scipy import stats

    keys = [
        k for k in per_seed[0] if k.startswith(prefix) and not k.endswith(("runtime", "per_second"))
    ]
    rows = []
    for key in keys:
        vals = np.array([m[key] for m in per_seed], dtype=np.float64)
        n = len(vals)
        half = float(stats.t.ppf(0.975, n - 1) * vals.std(ddof=1) / np.sqrt(n)) if n > 1 else None
        rows.append(
            {"metric": key.removeprefix(prefix), "mean": float(vals.mean()), "ci95": half, "n": n}
        )
    return pl.DataFrame(
        rows, schema={"metric": pl.String, "mean": pl.Float64, "ci95": pl.Float64, "n": pl.Int64}
    )


def load_results(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``results.json`` of a finished fine-tuning run."""
    results: dict[str, Any] = json.loads((Path(out_dir) / "results.json").read_text())
    return results


def data_from_bed(
    bed: str | os.PathLike[str],
    genome_path: str | os.PathLike[str],
    tok: KmerTokenizer,
    *,
    label_column: str = "name",
    val_records: Sequence[str] = (),
    test_records: Sequence[str] = (),
    max_length: int = 512,
) -> ClassificationData:
    """Labelled intervals of a BED file on a reference genome.

    Sequences are fetched from ``genome_path`` (reverse-complemented on ``-`` strand rows)
    and labelled by the ``name``, ``score`` or ``strand`` column. Intervals on
    ``val_records`` / ``test_records`` form the validation / test splits (whole records,
    so no base is shared between splits).
    """
    from dnakmer.genome import Genome

    columns = ["chrom", "start", "end", "name", "score", "strand"]
    if label_column not in ("name", "score", "strand"):
        raise ValueError(f"label_column must be name, score or strand, got {label_column!r}")
    frame = pl.read_csv(
        bed,
        separator="\t",
        has_header=False,
        comment_prefix="#",
        infer_schema=False,
        quote_char=None,
    )
    if frame.width < columns.index(label_column) + 1:
        raise ValueError(f"{bed}: needs at least {columns.index(label_column) + 1} columns")
    frame = frame.rename(dict(zip(frame.columns, columns, strict=False)))
    genome = Genome.open(genome_path)
    comp = str.maketrans("ACGTacgtNn", "TGCAtgcaNn")
    seqs, labels, splits = [], [], []
    for i, row in enumerate(frame.iter_rows(named=True), start=1):
        try:
            start, end = int(row["start"]), int(row["end"])
        except ValueError:
            raise ValueError(f"{bed}:{i}: start/end are not integers") from None
        seq = genome.fetch(row["chrom"], start, end)
        if row.get("strand") == "-":
            seq = seq.translate(comp)[::-1]
        seqs.append(seq)
        labels.append(str(row[label_column]))
        splits.append(
            "test"
            if row["chrom"] in test_records
            else "val"
            if row["chrom"] in val_records
            else "train"
        )
    names = sorted(set(labels), key=lambda x: (len(x), x))
    index = {n: i for i, n in enumerate(names)}
    ids, labs = {}, {}
    for split in ("train", "val", "test"):
        rows = [j for j, s in enumerate(splits) if s == split]
        if rows:
            enc = tok.encode_batch([seqs[j] for j in rows], max_length=max_length)
            ids[split] = enc["input_ids"]
            labs[split] = np.array([index[labels[j]] for j in rows], dtype=np.int64)
    return ClassificationData(
        ids=ids,
        labels=labs,
        num_labels=len(names),
        pad_token_id=tok.pad_token_id,
        label_names=names,
        source={
            "bed": str(Path(bed).resolve()),
            "genome": str(Path(genome_path).resolve()),
            "window_bases": _common_length(seqs),
        },
    )
