"""Probes: the questions asked of a model.

- :mod:`dnakmer.probes.masked_tokens`: masked-token accuracy against the neighbour rule
  and shuffled controls;
- :mod:`dnakmer.probes.embeddings`: static, per-layer and per-nucleotide embeddings;
- :mod:`dnakmer.probes.embedding_analysis`: what those embeddings are organised by;
- :mod:`dnakmer.probes.nextkmer`: the next-k-mer benchmark of a model (fine-tuning over
  k, seeds and initialisations, the frozen-encoder linear probe, comparison with the
  baselines).

Modules here import the root, :mod:`dnakmer.datasets`, :mod:`dnakmer.models` and
:mod:`dnakmer.training`.
"""
