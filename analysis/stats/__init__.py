"""The statistics the answer tables use: intervals on a row's median (``intervals``), corrected verdicts of a
comparison (``verdicts``: faster, tied, slower or no_interval), the oracle's switch test (``tests``) and
repeats of a point pooled (``repeats``).

One word for "the difference is within the noise": **tied** (multiplicity's decision code ``same``, the
winners' ``tied_with_fastest``). The column values files hold (``tied``, ``within noise`` in plan_bias) are
unchanged. The numerical kernels (standard errors, ratio and geometric-mean intervals, Benjamini-Hochberg) are
the harness's: harness.results.uncertainty and harness.results.multiplicity.
"""
