"""The study: every probe on one genome and several models, its findings and its report.

- :mod:`dnakmer.study.interrogate`: :func:`~dnakmer.study.interrogate.interrogate`, the
  whole study in one resumable call;
- :mod:`dnakmer.study.budget`: how much work each stage does;
- :mod:`dnakmer.study.stages`: the stages, one method each;
- :mod:`dnakmer.study.findings`: the three findings, decided with confidence intervals;
- :mod:`dnakmer.study.report`: ``summary.md``, ``report.html`` and ``findings.json``;
- :mod:`dnakmer.study.demo`: the offline demo on the shipped genome and models.
"""
