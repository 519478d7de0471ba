"""Predicting a layer's latency (and a point's energy) for a shape, model, size or GPU never measured.

Honest by construction:
- Features are what is known before anything runs: the layer's geometry, its FLOPs and least traffic (both
  computed from shapes), its own input size, the batch, the dtype, the algorithm that runs it, and the GPU's
  datasheet numbers. Nothing measured on the point being predicted (no std, no percentiles, no share of
  the model, no workspace); ``MEASURED`` lists them and a test proves features do not change with them.
- Evaluated only on data the fit did not see: leave-one-model-out, train-on-smaller / test-on-larger input
  sizes (extrapolation), and leave-one-gpu-out where several GPUs were measured. Median and mean absolute
  percentage errors per split, for the gradient-boosted model and for a roofline-only baseline.
- The baseline is the roofline max(FLOPs / peak, bytes / bandwidth), scaled per GPU by the median ratio of
  measured to roofline time on the training rows (so it is not beaten merely for being uncalibrated).
  The boosted model learns the log ratio of measured to baseline time, so it extrapolates like the roofline
  where trees alone cannot (sizes beyond the training range).
- Whole model = the sum of its predicted layers + the non-conv remainder measured at the same model, GPU
  and size with the other algorithms (never the predicted point itself); the remainder's share of that
  prediction is reported beside its error (a prediction mostly made of measured remainder proves little).
- Per fold as well as pooled: the worst fold beside the mean of the folds; leave-one-gpu-out is marked weak
  where fewer than ``STRONG_GPU_TYPES`` GPU types were measured.
- What a user of the predictor needs: per held-out layer, the regret of running the algorithm predicted
  fastest instead of the one measured fastest (``regret``), beside the expected regret of a random pick.

The package, by concern: ``features`` (what is known before anything runs, and the training frames),
``model`` (the roofline baseline and the boosted trees), ``evaluate`` (held-out errors per split and fold),
``regret`` (the cost of trusting the predicted-fastest algorithm), ``save`` (the final fit, saved and loaded).
"""

from __future__ import annotations

from analysis.predict.evaluate import (
    MAX_TEST_ROWS,
    STRONG_GPU_TYPES,
    Evaluation,
    Fold,
    ape,
    evaluate,
    fold_summary,
    folds,
    remainders,
    sample_points,
    summarise,
    weak_note,
    whole_model,
)
from analysis.predict.features import (
    CATEGORICAL,
    DTYPE_BYTES,
    LAYER_NUMERIC,
    MEASURED,
    MIN_TRAIN_ROWS,
    POINT_NUMERIC,
    Frame,
    energy_frame,
    layer_features,
    layer_frame,
    roofline_ms,
    spec_columns,
)
from analysis.predict.model import (
    MAX_TRAIN_ROWS,
    Baseline,
    Booster,
    free_cores,
)
from analysis.predict.regret import (
    OCCURRENCE,
    WITHIN,
    choices,
    regret_summary,
)
from analysis.predict.save import (
    fit_and_save,
    load_model,
)

__all__ = [
    "Baseline",
    "Booster",
    "CATEGORICAL",
    "DTYPE_BYTES",
    "Evaluation",
    "Fold",
    "Frame",
    "LAYER_NUMERIC",
    "MAX_TEST_ROWS",
    "MAX_TRAIN_ROWS",
    "MEASURED",
    "MIN_TRAIN_ROWS",
    "OCCURRENCE",
    "POINT_NUMERIC",
    "STRONG_GPU_TYPES",
    "WITHIN",
    "ape",
    "choices",
    "energy_frame",
    "evaluate",
    "fit_and_save",
    "fold_summary",
    "folds",
    "free_cores",
    "layer_features",
    "layer_frame",
    "load_model",
    "regret_summary",
    "remainders",
    "roofline_ms",
    "sample_points",
    "spec_columns",
    "summarise",
    "weak_note",
    "whole_model",
]
