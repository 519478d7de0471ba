"""The checks over layers rows (pure): which algorithm guess chose per layer, and why layers did not run as asked."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from harness.acceptance.checks import AcceptanceCheck
from harness.acceptance.plan import CONFIGS, MODELS
from harness.acceptance.rows import INFO, Row, _first_line, _order


def _geometry(r: Mapping[str, Any]) -> str:
    if r.get("in_channels") is None:
        return "-"
    return (
        f"{r.get('in_channels')}->{r.get('out_channels')} k{r.get('kernel_h')}x{r.get('kernel_w')} "
        f"s{r.get('stride_h')} g{r.get('groups')} in {r.get('in_h')}x{r.get('in_w')}"
    )


def check_guess_choices(layer_rows: Sequence[Row], configs_by_run: Mapping[str, str]) -> AcceptanceCheck:
    """What cuDNN's heuristic (algo=guess) chose for each layer: a row per model x size x layer, a column per
    configuration."""
    guess = [r for r in layer_rows if r.get("algo_requested") == "guess"]
    configs = _order((_layer_config(r, configs_by_run) for r in guess), [c.label for c in CONFIGS])
    table: dict[tuple[str, Any, Any], Row] = {}
    for r in guess:
        key = (str(r.get("model")), r.get("input_size"), r.get("layer_index"))
        cell = table.setdefault(
            key,
            {"model": key[0], "input size": key[1], "layer": r.get("layer_name"), "geometry": _geometry(r)}
            | {c: "-" for c in configs},
        )
        cell[_layer_config(r, configs_by_run)] = str(r.get("algo_used"))
    models = {m: i for i, m in enumerate(_order((k[0] for k in table), MODELS))}
    order = sorted(
        table, key=lambda k: (models[k[0]], k[1] if k[1] is not None else -1, k[2] if k[2] is not None else -1)
    )
    used = Counter(str(r.get("algo_used")) for r in guess)
    figure = ", ".join(f"{a} {n}" for a, n in used.most_common()) or "no guess layer rows"
    return AcceptanceCheck(
        "guess: cuDNN's choices",
        "the algorithm guess chose per layer (information)",
        f"layers: {figure}",
        INFO,
        tuple(table[k] for k in order),
    )


def _layer_config(r: Mapping[str, Any], configs_by_run: Mapping[str, str]) -> str:
    return configs_by_run.get(str(r.get("run_id")), f"{r.get('dtype')} {r.get('math_type')}")


def check_unsupported_layers(layer_rows: Sequence[Row], configs_by_run: Mapping[str, str]) -> AcceptanceCheck:
    """Why layers could not run their algorithm (the layers rows' detail), grouped."""
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for r in layer_rows:
        if r.get("status") not in ("unsupported", "fallback"):
            continue
        key = (str(r.get("algo_requested")), _layer_config(r, configs_by_run), _first_line(r.get("detail"), 160))
        groups.setdefault(key, []).append(r)
    details = tuple(
        {
            "algo": a,
            "config": c,
            "status": ", ".join(sorted({str(r.get("status")) for r in rs})),
            "layers": len(rs),
            "models": ", ".join(_order({str(r.get("model")) for r in rs}, MODELS)),
            "detail": d,
        }
        for (a, c, d), rs in sorted(groups.items())
    )
    n = sum(len(rs) for rs in groups.values())
    return AcceptanceCheck(
        "layers not run as asked",
        "unsupported and fallback layers, and why (information)",
        f"{n} layer rows in {len(groups)} group(s)",
        INFO,
        details,
    )
