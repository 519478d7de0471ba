"""Old path of the latency predictor, now the package analysis.predict (features, model, evaluate, regret,
save).

Kept as an alias module: SLURM jobs in flight pickle callables by module path, models saved before the move
unpickle ``analysis.predictor.Booster`` from here, and callers import from here.
"""

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
from analysis.predict.evaluate import summarise as _summarise
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
from analysis.predict.features import spec_columns as _spec_columns
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
    "_spec_columns",
    "_summarise",
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
