"""The filters of every analysis command: partition values and measurement settings to keep (Filters), their
command-line flags, and keeping the points rows of the settings asked for."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from analysis.errors import AnalysisError
from analysis.tree import settings
from analysis.tree.records import tree_names
from harness import validate
from harness.results.layout import PARTITION_KEYS

# How a point was measured, beside where (the partitions): option -> points column, the settings of
# harness.config.keys. A tree may hold several settings of one point (math=fma,tensor_op in one multirun): the
# rows of each are resolved and analysed apart (analysis.tree.settings); these options keep one.
SETTINGS = settings.OPTIONS


@dataclass(frozen=True)
class Filters:
    """Partition values to keep, and measurement settings to keep (empty: all). Values are checked against
    what the tree holds."""

    stage: tuple[str, ...] = ()
    gpu: tuple[str, ...] = ()
    model: tuple[str, ...] = ()
    algo: tuple[str, ...] = ()
    device: tuple[str, ...] = ()
    backend: tuple[str, ...] = ()
    math: tuple[str, ...] = ()
    fallback: tuple[str, ...] = ()
    benchmark: tuple[str, ...] = ()
    graph: tuple[str, ...] = ()
    cpu_threads: tuple[str, ...] = ()
    plan: tuple[str, ...] = ()
    loss: tuple[str, ...] = ()
    optimizer: tuple[str, ...] = ()
    input_grad: tuple[str, ...] = ()
    amp: tuple[str, ...] = ()
    deterministic: tuple[str, ...] = ()
    train_mode: tuple[str, ...] = ()

    def items(self) -> list[tuple[str, tuple[str, ...]]]:
        """The partition filters given."""
        return [(k, getattr(self, k)) for k in PARTITION_KEYS if getattr(self, k)]

    def settings(self) -> list[tuple[str, tuple[str, ...]]]:
        """The setting filters given (option, values)."""
        return [(k, getattr(self, k)) for k in SETTINGS if getattr(self, k)]

    def chosen(self) -> str:
        """The filters as the command line gave them."""
        return " ".join(f"{flag(k)} {','.join(v)}" for k, v in [*self.items(), *self.settings()])

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser, where: str = "") -> None:
        """``--stage --gpu --model --algo`` and the settings' (``--device --backend --math --fallback
        --benchmark --graph --cpu-threads --plan``), each repeatable or comma-separated (every analysis
        command)."""
        for key in PARTITION_KEYS:
            parser.add_argument(
                f"--{key}",
                action="append",
                default=[],
                metavar=key.upper(),
                type=validate.text,
                help=f"keep only this {key}{where} (repeat, or comma-separate several)",
            )
        Filters.add_setting_arguments(parser, where)

    @staticmethod
    def add_setting_arguments(parser: argparse.ArgumentParser, where: str = "", skip: tuple[str, ...] = ()) -> None:
        """The settings' filters alone (``skip``: options the command uses otherwise)."""
        for key, column in SETTINGS.items():
            if key not in skip:
                parser.add_argument(
                    flag(key),
                    dest=key,
                    action="append",
                    default=[],
                    metavar=key.upper(),
                    type=validate.text,
                    help=f"keep only points measured with this {column} ({_kind(key)}){where}",
                )

    @classmethod
    def from_arguments(cls, args: argparse.Namespace, keys: Sequence[str] = (*PARTITION_KEYS, *SETTINGS)) -> Filters:
        return cls(**{k: tuple(v for item in getattr(args, k) for v in item.split(",") if v) for k in keys})


def flag(option: str) -> str:
    """The command-line flag of a filter option: --cpu-threads for cpu_threads."""
    return "--" + option.replace("_", "-")


def _kind(option: str) -> str:
    from harness.config.keys import SETTINGS as KEYS

    (key,) = [k for k in KEYS if k.option == option]
    choices = [c for c in key.choices or () if c != "auto"]
    return " or ".join(choices) if choices else "a value the rows hold"


def keep_settings(points: pa.Table | None, filters: Filters, roots: list[Path]) -> pa.Table | None:
    """The points rows measured with the settings asked for, and those a setting does not apply to or that do
    not record it (analysis.tree.settings: ANY and UNKNOWN; e.g. algo=torch for ``--fallback``, a CPU row for
    ``--math``, an imported row); a value no row holds is an error that lists those the rows do hold."""
    if points is None:
        return None
    needed = dict.fromkeys([*settings.COLUMNS, "status", "algo", "device", "direction", "algo_fallback_layers"])
    frame = points.select([c for c in needed if c in points.column_names]).to_pandas()
    values = settings.values(frame)
    keep = np.ones(points.num_rows, dtype=bool)
    for key, wanted in filters.settings():
        column = values[SETTINGS[key]]
        present = sorted(settings.recorded(frame, SETTINGS[key]))
        missing = [v for v in wanted if v.lower() not in present]
        if missing:
            raise AnalysisError(
                f"{flag(key)} {', '.join(missing)}: no point under {tree_names(roots)} was measured "
                f"with {SETTINGS[key]} {', '.join(missing)}; present: {', '.join(present) or '(none)'}"
            )
        asked = column.isin([v.lower() for v in wanted]) | column.isin([settings.ANY, settings.UNKNOWN])
        keep &= asked.to_numpy()
    return points.filter(pa.array(keep))
