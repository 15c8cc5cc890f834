"""Genome-biology fine-tuning tasks (promoters, splice sites, coding regions) built from a
genome and its GFF3/GTF annotation, in the same dataset layout as the next-k-mer benchmark.

- :mod:`dnakmer.datasets.tasks.build`: :func:`build_task` and :class:`TaskDataset`;
- :mod:`dnakmer.datasets.tasks.windows`: positive and negative windows of each task;
- :mod:`dnakmer.datasets.tasks.genome_line`: the genome as one coordinate line with its
  split regions;
- :mod:`dnakmer.datasets.tasks.intervals`: interval arithmetic and window sampling.
"""

from __future__ import annotations

from dnakmer.datasets.tasks.build import LABEL_NAMES, TASKS, TaskDataset, build_task

__all__ = ["LABEL_NAMES", "TASKS", "TaskDataset", "build_task"]
