"""The report's Predictor section: how the latency and energy predictors were fitted and what their
held-out errors and choices are (analysis.predict's evaluations), with the parity and regret figures."""

from __future__ import annotations

from pathlib import Path

from analysis import predict
from analysis.report import render


def predictor_section(evaluations: list[predict.Evaluation], figures: dict[str, Path], fitted: bool) -> render.Section:
    """The section; ``fitted``: whether the run asked for the predictor (--predictor)."""
    pred = render.Section("Predictor")
    if not fitted:
        pred.text("Not run (add --predictor to fit and evaluate it).")
    elif not evaluations:
        pred.text(f"Too little data to fit (fewer than {predict.MIN_TRAIN_ROWS} rows).")
    for ev in evaluations:
        if ev.name == "latency":
            pred.text(
                f"{ev.kind}: gradient-boosted trees (scikit-learn) on the log ratio of measured time to a roofline "
                "baseline, against that baseline alone (max(FLOPs/peak, bytes/bandwidth), scaled per GPU on the "
                "training rows). Features: layer geometry, FLOPs, bytes, the layer's own input size, batch, dtype, "
                "the algorithm that ran it, GPU datasheet numbers; nothing measured on the predicted point. 'model' "
                "rows: whole model = sum of predicted layers + the non-conv remainder measured at the same model, "
                "gpu and size with the other algorithms."
            )
        else:
            pred.text(
                f"{ev.kind}: gradient-boosted trees on the log ratio to an energy-proportional-to-FLOPs baseline "
                "(scaled per GPU on the training rows). Features: model FLOPs, parameters, input size, batch, dtype, "
                "conv layer count, algorithm, GPU datasheet numbers."
            )
        pred.text(
            "Errors are on held-out rows only: APE = |predicted - measured| / measured, in %; a split's "
            "rows pool every fold's test rows. A leave-one-gpu-out split with fewer than "
            f"{predict.STRONG_GPU_TYPES} GPU types learns across datasheets from too few examples: its "
            "rows say 'weak' in the note."
        )
        pred.table(ev.metrics, f"{ev.kind}: absolute percentage error per split")
        share = ev.metrics.get("remainder_share")
        if share is not None and share.notna().any():
            model = ev.metrics[(ev.metrics["level"] == "model") & (ev.metrics["predictor"] == "boosted")]
            pred.text(
                "Whole-model predictions include the non-conv remainder as measured with the other algorithms: "
                "its median share of the boosted prediction (remainder_share) is "
                + ", ".join(f"{r.remainder_share:.0%} ({r.split})" for r in model.itertuples())
                + "; that part of a whole-model error is measurement, not prediction."
            )
        if len(ev.fold_summary):
            pred.table(
                ev.fold_summary,
                f"{ev.kind}: per split, the mean over folds of each fold's median APE and the "
                "worst fold (what it held out)",
            )
        pred.table(ev.folds, f"{ev.kind}: per fold")
        if len(ev.regret):
            pooled = ev.regret[ev.regret["held_out"] == "all folds"]
            pred.text(
                "Choosing an algorithm: per held-out layer (a layer at one point) with at least two algorithms "
                "timed ok, regret = measured time of the algorithm predicted fastest / the measured fastest - 1. "
                "Beside it, a random pick among the same algorithms (its expected regret). Median regret: "
                + ", ".join(
                    f"{r.median_regret_pct:.1f}% ({r.split}; {r.within_5pct:.0%} of {r.layers} layers "
                    f"within 5%, random pick {r.random_within_5pct:.0%})"
                    for r in pooled.itertuples()
                )
                + "."
            )
            pred.table(
                ev.regret,
                f"{ev.kind}: regret of choosing the predicted-fastest algorithm, per split (all " "folds) and per fold",
            )
        pred.items([f"skipped: {s}" for s in ev.skipped])
        pred.image(
            figures.get(f"parity-{ev.name}"),
            f"{ev.kind}: predicted against measured, held-out rows, a " "colour per fold; dashed +-10%, dotted +-25%",
        )
        pred.image(
            figures.get(f"regret-{ev.name}"),
            f"{ev.kind}: cumulative share of held-out layers against the "
            "regret of the predicted-fastest algorithm (solid) and of a random pick (dashed)",
        )
    return pred
