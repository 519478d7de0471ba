"""From the results store's Parquet to answers: tables, plots, a report and an honestly evaluated predictor.

Reads only what ``harness`` wrote (RESULTS-SCHEMA.md); ``python -m analysis --help`` for the command line.
Modules: ``load`` (read, check, resolve repeats), ``tables`` (pure DataFrame arithmetic), ``checks``
(warnings worth a reader's attention), ``specs`` (GPU datasheet numbers), ``predictor`` (features, splits,
baseline, gradient boosting), ``plots`` (matplotlib PNGs), ``report`` (Markdown and HTML), ``pipeline`` (all
of it, writing files), ``uncertainty`` (standard errors from summary statistics, ratio intervals, the
geometric means, between-run noise, the slower/faster rule). Comparing and references: ``compare`` (``python -m
analysis.compare``: two sides of the same points, verdicts, the noise floor), ``selection`` (which rows form
a side), ``bless`` (``python -m analysis.bless``: a references file for ``references=PATH`` runs).
"""

# The Python API (docs/python-api.md), loaded on first use: ``analysis.load_tree``, ``analysis.make_plan``.
_EXPORTS = {"load_tree": "analysis.api", "make_plan": "analysis.api", "AnalysisError": "analysis.errors"}


def __getattr__(name: str) -> object:  # PEP 562: a module attribute loaded on first use
    if name not in _EXPORTS:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
