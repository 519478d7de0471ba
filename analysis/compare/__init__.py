"""`python -m analysis.compare`: two sets of measurements of the same points, compared with statistics.

Modules: ``sides`` (reading the trees, making sides A and B), ``verdicts`` (matching and judging: pure),
``noise`` (the run-to-run noise floor: pure), ``pipeline`` (all of it), ``report`` (Markdown/HTML),
``__main__`` (the command line and its exit codes).
"""
