"""Datasets: what turns genomes and annotations into model-ready arrays. No torch.

- :mod:`dnakmer.datasets.store`: the on-disk layout every dataset shares
  (``manifest.json`` + one memory-mappable ``.npy`` per field);
- :mod:`dnakmer.datasets.nextkmer`: the next-k-mer benchmark's leakage-free windows and
  labels (:func:`~dnakmer.datasets.nextkmer.build`, :class:`NextKmerDataset`);
- :mod:`dnakmer.datasets.baselines`: its floors (uniform, class prior, Markov chains);
- :mod:`dnakmer.datasets.windows`: sequence windows for probing models, k-mer
  bookkeeping in code space and composition-preserving shuffles;
- :mod:`dnakmer.datasets.annotation`: GFF3/GTF reading;
- :mod:`dnakmer.datasets.tasks`: genome-biology classification tasks.

Modules here import only the package root (:mod:`dnakmer`) and each other.
"""
