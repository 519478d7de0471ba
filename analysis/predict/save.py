"""The final fit on every row, saved (pickle and its metadata), and loading a saved model back."""

from __future__ import annotations

import pickle
from dataclasses import asdict
from pathlib import Path

from analysis.predict.evaluate import Evaluation
from analysis.predict.features import MIN_TRAIN_ROWS, Frame
from analysis.predict.model import MAX_TRAIN_ROWS, Booster
from analysis.tree import widths


# -- the saved model ----------------------------------------------------------------------------------------
def fit_and_save(
    frame: Frame, evaluation: Evaluation, out: Path, max_train_rows: int = MAX_TRAIN_ROWS, threads: int | None = None
) -> list[Path]:
    """Fit on every row and save the model (pickle), its metrics (JSON, CSV) and the data it saw (Parquet)."""
    import json

    import sklearn

    out.mkdir(parents=True, exist_ok=True)
    written = []
    if len(frame.data) < MIN_TRAIN_ROWS:
        return written
    name = frame.name
    model = Booster(frame.numeric, frame.categorical, max_train_rows=max_train_rows, threads=threads).fit(frame.data)
    path = out / f"{name}.pkl"
    with open(path, "wb") as f:
        pickle.dump(
            {
                "model": model,
                "kind": frame.kind,
                "sklearn_version": sklearn.__version__,
                "features": frame.numeric + frame.categorical,
            },
            f,
        )
    written.append(path)
    # the layers' small integers as an int32 load gives them (analysis.tree.widths)
    widths.as_int32(frame.data).to_parquet(out / f"{name}-training.parquet", index=False)
    written.append(out / f"{name}-training.parquet")
    meta = {
        "kind": frame.kind,
        "rows": len(frame.data),
        "features": frame.numeric + frame.categorical,
        "target": "y",
        "baseline": asdict(model.baseline),
        "sklearn_version": sklearn.__version__,
        "metrics": evaluation.metrics.to_dict(orient="records"),
        "folds": evaluation.folds.to_dict(orient="records"),
        "fold_summary": evaluation.fold_summary.to_dict(orient="records"),
        "regret": evaluation.regret.to_dict(orient="records"),
        "skipped": evaluation.skipped,
    }
    (out / f"{name}-metrics.json").write_text(json.dumps(meta, indent=2, default=float) + "\n")
    written.append(out / f"{name}-metrics.json")
    if len(evaluation.predictions):
        widths.as_int32(evaluation.predictions).to_parquet(out / f"{name}-test-predictions.parquet", index=False)
        written.append(out / f"{name}-test-predictions.parquet")
    return written


def load_model(path: str | Path) -> Booster:
    """A saved model; ``model.predict(frame.data)`` on rows built by ``layer_frame``/``energy_frame``."""
    with open(path, "rb") as f:
        return pickle.load(f)["model"]
