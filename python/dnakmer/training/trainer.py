"""One place that turns dnakmer's training options into Hugging Face ``Trainer`` settings.

Every training entry point (pretraining, next-k-mer and classification fine-tuning) uses
the same engine: Hugging Face ``Trainer`` on PyTorch, so ``torchrun`` / ``accelerate
launch`` give DDP, checkpoints are resumable, and bf16 autocast is used on GPUs that
support it (fp32 on CPU).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnakmer._io import output_lock

__all__ = [
    "COMPLETE_MARKER",
    "TrainOptions",
    "device_kind",
    "is_main_process",
    "last_complete_checkpoint",
    "mark_complete_callback",
    "training_arguments",
]


@dataclass
class TrainOptions:
    """Options shared by every training command.

    Attributes
    ----------
    max_steps : int
        Optimizer steps.
    batch_size : int
        Samples per device per step (before accumulation).
    grad_accum : int
        Gradient accumulation steps; the global batch is
        ``batch_size * grad_accum * world_size``.
    learning_rate, weight_decay : float
    warmup_fraction : float
        Linear warmup over this fraction of ``max_steps``, then linear decay to 0.
    eval_every : int
        Evaluate (and checkpoint) every this many steps.
    log_every : int
    early_stopping : int or None
        Stop after this many evaluations without improvement.
    seed : int
    device : {"auto", "cpu", "cuda"}
    save_total_limit : int
        Checkpoints kept besides the best one.
    num_workers : int
        DataLoader worker processes.
    quiet : bool
        No progress bars.
    """

    max_steps: int = 1000
    batch_size: int = 32
    grad_accum: int = 1
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    eval_every: int = 200
    log_every: int = 50
    early_stopping: int | None = None
    seed: int = 0
    device: str = "auto"
    save_total_limit: int = 2
    num_workers: int = 0
    quiet: bool = False

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "grad_accum", "eval_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")


def device_kind(device: str = "auto") -> str:
    """``"cuda"`` when asked for (or available under ``"auto"``), else ``"cpu"``."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but CUDA is not available")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def training_arguments(
    out_dir: str | os.PathLike[str],
    opts: TrainOptions,
    *,
    metric_for_best_model: str,
    greater_is_better: bool,
    **extra: Any,
) -> Any:
    """``transformers.TrainingArguments`` for ``opts`` writing checkpoints to ``out_dir``."""
    import torch
    from transformers import TrainingArguments

    cuda = device_kind(opts.device) == "cuda"
    bf16 = cuda and torch.cuda.is_bf16_supported()
    return TrainingArguments(
        output_dir=str(Path(out_dir)),
        max_steps=opts.max_steps,
        per_device_train_batch_size=opts.batch_size,
        per_device_eval_batch_size=opts.batch_size,
        gradient_accumulation_steps=opts.grad_accum,
        learning_rate=opts.learning_rate,
        weight_decay=opts.weight_decay,
        lr_scheduler_type="linear",
        warmup_steps=int(opts.warmup_fraction * opts.max_steps),
        eval_strategy="steps",
        eval_steps=opts.eval_every,
        save_strategy="steps",
        save_steps=opts.eval_every,
        save_total_limit=opts.save_total_limit,
        load_best_model_at_end=True,
        metric_for_best_model=metric_for_best_model,
        greater_is_better=greater_is_better,
        logging_steps=opts.log_every,
        report_to="none",
        seed=opts.seed,
        data_seed=opts.seed,
        bf16=bf16,
        use_cpu=not cuda,
        dataloader_pin_memory=cuda,
        dataloader_num_workers=opts.num_workers,
        # Under torchrun on CPU the process group needs gloo; single processes need none.
        ddp_backend="gloo" if not cuda and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        # Progress goes to dnakmer.progress (a bar on the command line), not to tqdm
        # bars and printed log dictionaries.
        disable_tqdm=True,
        # Our models average their loss per batch; scaling it by the number of processes
        # (transformers' token averaging across devices) would double gradients under DDP.
        average_tokens_across_devices=False,
        **extra,
    )


COMPLETE_MARKER = "COMPLETE"
"""File written into a ``checkpoint-N`` folder once everything in it is saved."""


def progress_callbacks(trainer: Any) -> None:
    """Replace the trainer's printed log dictionaries by reports to
    :mod:`dnakmer.progress`: steps done of the schedule, with the latest training and
    evaluation loss."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from dnakmer.progress import report

    class Report(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.losses: dict[str, float] = {}

        def _report(self, state: Any) -> None:
            note = ", ".join(f"{k} {v:.3f}" for k, v in self.losses.items())
            report("training steps", state.global_step, state.max_steps, note)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._report(state)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            for key, name in (("loss", "loss"), ("eval_loss", "eval loss")):
                if logs and key in logs:
                    self.losses[name] = float(logs[key])
            self._report(state)

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(Report())


def mark_complete_callback() -> Any:
    from transformers import TrainerCallback

    class MarkComplete(TrainerCallback):  # type: ignore[misc]
        """A checkpoint counts only once everything in it is written."""

        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.is_world_process_zero:
                done = Path(args.output_dir) / f"checkpoint-{state.global_step}" / COMPLETE_MARKER
                done.write_text(f"{state.global_step}\n")

    return MarkComplete()


def last_complete_checkpoint(folder: Path, clean: bool = True) -> Path | None:
    """Newest ``checkpoint-N`` carrying the completion marker; with ``clean``, incomplete
    ones (a run killed while saving) are deleted."""
    if not folder.is_dir():
        return None
    found = []
    for d in folder.glob("checkpoint-*"):
        if not d.name.split("-")[-1].isdigit():
            continue
        if (d / COMPLETE_MARKER).exists():
            found.append((int(d.name.split("-")[-1]), d))
        elif clean:
            shutil.rmtree(d, ignore_errors=True)
    return max(found)[1] if found else None


def is_main_process() -> bool:
    """False in the non-zero ranks of a ``torchrun`` launch."""
    return int(os.environ.get("RANK", "0")) == 0


@contextlib.contextmanager
def locked_output(out: Path) -> Iterator[Path]:
    """Create the training folder ``out`` and hold its lock while training writes into
    it (in the main process of a ``torchrun`` launch; its other ranks write nothing of
    their own): a second run into the same folder gets :class:`OutputBusyError`. A
    folder this call created is removed again if the run fails before writing to it."""
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        if not is_main_process():
            yield out
            return
        with output_lock(out):
            yield out
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only if still empty
        raise
