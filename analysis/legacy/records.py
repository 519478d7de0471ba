"""What an import is made of: the constants every imported row carries, the errors, and the records
(``Combo``: one model x algorithm x GPU; ``Source``: one CSV; ``Issue``; ``ImportReport``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.errors import InputFileError, OutputError
from harness.results.layout import Partition

STAGE = "legacy"


SOURCE = "ai3-8CuDNN@2d2955f"  # WiamSkakri/ai3-8CuDNN, Performance_Prediction_Refactored/results/


CONFIG_HASH = "legacy-ai3-2d2955f"  # one tag for every imported row: nothing here was configured by us


ENERGY_METHOD = "legacy_power_average"  # mean NVML power (1-s averaged) x time; not "nvml_counter"


N_ITERATIONS = 20  # the old README: 20 timed iterations after 10 warmup (not in the files)


BATCH_SIZE = 1


DTYPE = "float32"


SUMMARY = "_legacy-import.json"  # what an import did, beside what it wrote


DEVICE_NAMES = {"h100": "NVIDIA H100 NVL", "l40s": "NVIDIA L40S", "v100": "NVIDIA V100"}


OVERALL_COLUMNS = (
    "model",
    "algorithm",
    "batch_size",
    "input_size",
    "mean",
    "std",
    "min",
    "max",
    "median",
    "power_mean_w",
    "power_std_w",
    "power_min_w",
    "power_max_w",
    "energy_total_j",
    "energy_per_inference_j",
    "power_samples",
    "device",
)


LAYER_COLUMNS = (
    "model",
    "algorithm",
    "input_size",
    "layer",
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "mean_ms",
    "std_ms",
    "percentage",
    "device",
)


class LegacyError(OutputError):
    """An --out the importer must not write: a file, a folder inside a results partition, or a tree with real
    runs."""


class NothingImported(InputFileError):
    """No row of the inputs could be imported (no old-system CSV among them, or none readable); nothing was
    written."""


@dataclass(frozen=True)
class Combo:
    model: str
    algo: str  # ours
    gpu: str

    @property
    def run_id(self) -> str:
        return f"legacy-{self.model}-{self.algo}-{self.gpu}"

    def partition(self) -> Partition:
        return Partition(STAGE, self.gpu, self.model, self.algo)


@dataclass
class Source:
    label: str  # "archive.tar.gz!member.csv" or "file.csv": deterministic, wherever the input lies
    name: str  # the CSV's own file name
    data: bytes


@dataclass
class Issue:
    file: str
    line: int | None  # None: the whole file
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}" if self.line is not None else f"{self.file}: {self.reason}"


@dataclass
class ImportReport:
    files_read: int = 0
    files_imported: int = 0
    points: int = 0
    layers: int = 0
    written: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)  # skipped lines and files
    unmatched_layers: int = 0
    unmatched_examples: list[str] = field(default_factory=list)
    combined_skipped: int = 0  # combined_overall.csv rows also present in a per-combination file
    combined_mismatch: int = 0  # ... whose numbers differ from that file's
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "files_read": self.files_read,
            "files_imported": self.files_imported,
            "points": self.points,
            "layers": self.layers,
            "files_written": len(self.written),
            "skipped": len(self.issues),
            "issues": [str(i) for i in self.issues],
            "unmatched_layers": self.unmatched_layers,
            "unmatched_examples": self.unmatched_examples,
            "combined_rows_skipped": self.combined_skipped,
            "combined_rows_differing": self.combined_mismatch,
            "seconds": round(self.seconds, 3),
        }
