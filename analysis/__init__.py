"""From the results store's Parquet to answers: tables, plots, a report and an honestly evaluated predictor.

Reads only what ``harness`` wrote (RESULTS-SCHEMA.md); ``python -m analysis --help`` for the command line.
Subpackages, one per question a user asks:

- ``tree``: loading a results tree (read, check, resolve copies and repeats; settings, selection, datasheets);
- ``stats``: the statistics the tables rest on (intervals, tests, verdicts: faster / tied / slower; repeats);
- ``tables``: the tables, one module each under ``tables/catalog``, declared in ``tables.registry``;
- ``plans``: per-layer plans (make, find, projections; ``python -m analysis.plans``);
- ``predict``: the latency predictor (features, splits, baseline, gradient boosting);
- ``compare``: two sides of the same points, verdicts, the noise floor, ``bless`` (a references file);
- ``report``: the Markdown/HTML report, its sections and figures;
- ``legacy``: importing the system this harness replaces.

``pipeline`` runs all of it and writes the files. The flat modules beside these (``load``, ``tables``' old
names, ``answer``, ``planner``...) are aliases of their new homes, kept for a release (docs/changelog.md).
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
