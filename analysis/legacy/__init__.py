"""The old system's results (ai3-8CuDNN's CSVs) imported as a results tree: its own package.

- ``importer``: ``python -m analysis.legacy PATH... --out results-legacy`` (``import_legacy``, ``main``), from
  ``sources`` (the CSVs found and read), ``rows`` (a line as a row of our schema) and ``records`` (constants,
  errors, the import's records);
- ``layers``: each layer's own input size, traced from the torchvision model at the model's input size;
- ``flags``: the old system's known flaws by name (no torch: the report's checks read them too).
"""
