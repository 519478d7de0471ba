"""Old path of the latency predictor, now the package analysis.predict (features, model, evaluate, regret,
save).

Kept as an alias module: SLURM jobs in flight pickle callables by module path, models saved before the move
unpickle ``analysis.predictor.Booster`` from here, and callers import from here.
"""

from analysis.predict import *  # noqa: F403 (every public name of the package, as listed in its __all__)
from analysis.predict import __all__ as _public
from analysis.predict.evaluate import summarise as _summarise
from analysis.predict.features import spec_columns as _spec_columns

__all__ = [*_public, "_spec_columns", "_summarise"]
