"""The ``dnakmer`` command line, one thin module per command group:

- :mod:`dnakmer.cli.app`: the root command and :func:`main`, the entry point;
- :mod:`dnakmer.cli.genome`: ``stats``, ``vocab``, ``tokenize``;
- :mod:`dnakmer.cli.nextkmer`: ``nextkmer build``, ``nextkmer baselines``;
- :mod:`dnakmer.cli.tasks`: ``tasks build``;
- :mod:`dnakmer.cli.train`: ``pretrain``, ``finetune nextkmer``, ``finetune classify``;
- :mod:`dnakmer.cli.probe`: ``probe mask``, ``probe embeddings``, ``embed``;
- :mod:`dnakmer.cli.interrogate`: ``interrogate``, ``demo``;
- :mod:`dnakmer.cli.options`: options shared by commands, and the rules of options that
  only go with others;
- :mod:`dnakmer.cli.display`: the progress bar and the one table style.

torch and transformers are imported only when a command that needs them runs.
"""

from __future__ import annotations

from dnakmer.cli.app import app, main

__all__ = ["app", "main"]
