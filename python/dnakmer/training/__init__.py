"""Training: how a model learns.

- :mod:`dnakmer.training.trainer`: dnakmer's training options as Hugging Face
  ``Trainer`` settings (one engine for every entry point);
- :mod:`dnakmer.training.masking`: masked-language-model masking schemes and collator;
- :mod:`dnakmer.training.pretrain`: masked-LM pretraining of a BERT encoder on a genome;
- :mod:`dnakmer.training.finetune`: fine-tuning sequence classifiers on dataset folders.

Modules here import the root, :mod:`dnakmer.datasets` and :mod:`dnakmer.models`;
torch and transformers only inside functions.
"""
