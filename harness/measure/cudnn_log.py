"""Which cuDNN engine the torch baseline ran per layer, from cuDNN's API log (GPU only).

PyTorch runs its convolutions through cuDNN's graph (backend) API: cuDNN's heuristics (or, with
cudnn.benchmark, its timing) pick an engine, and nothing in PyTorch says which. cuDNN's error reporting and
API logging does: every API call is logged with its parameters, a descriptor with the fields it holds
(cuDNN docs, "Troubleshooting: Error Reporting and API Logging"). cuDNN 9 (the wheel here: 9.24, whose
libcudnn holds the names ``loglevel_dbg``/``logdest_dbg``) reads ``CUDNN_LOGLEVEL_DBG`` (0-3; 3: info, warnings
and errors) and ``CUDNN_LOGDEST_DBG`` (stdout, stderr or a file name); the v8 names (``CUDNN_LOGINFO_DBG=1``)
still work in v9's grace period and are set too. They are read when libcudnn loads, so the log is written
by a process of its own (``python -m harness.measure.cudnn_log``), started with them in its environment.

That process runs each layer's convolution (its input shape, weight shape, stride, padding, dilation and
groups, the job's dtype, math and cudnn.benchmark) twice: the first plans (heuristics or the benchmark
search, PyTorch caches the plan), the second runs the cached plan. A marker call
(``cudnnCreateTensorDescriptor``, which PyTorch's convolutions never make) is logged before and after the
second run, so the records between a layer's two markers are that layer's execution and nothing else. The
engine is the ``engine_id`` (the engine's global index, ``CUDNN_ATTR_ENGINE_GLOBAL_INDEX``) that the
``cudnnBackendExecute`` record's execution plan names, written ``eng<id>`` as cudnn-frontend tags plans
(``engN_kT=V``). A layer whose records name none (a convolution PyTorch runs without cuDNN, a log format
this parser does not know) is null: unknown, never a guess.

The record format parsed here (from the documented description and API logs posted in public issue threads,
e.g. NVIDIA/cudnn-frontend#39 and pytorch/pytorch#167242)::

    I! CuDNN (v91200 46) function cudnnBackendExecute() called:
    i!     handle: type=cudnnHandle_t; streamId=0x5d3f...;
    i!     executionPlan: type=CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR:
    i!         engcfg: type=CUDNN_BACKEND_ENGINECFG_DESCRIPTOR:
    i!             engine: type=CUDNN_BACKEND_ENGINE_DESCRIPTOR:
    i!                 engine_id: type=int; val=12;
    i! Time: 2025-11-14T23:49:41.702901 (0d+0h+1m+39s since start)
    i! Process=3600; Thread=10156; GPU=NULL; Handle=NULL; StreamId=NULL.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness.measure.layers import LayerRecord, conv_geometry

log = logging.getLogger(__name__)

MARKER = "cudnnCreateTensorDescriptor"
EXECUTE = "cudnnBackendExecute"
LOG_LEVEL = {"CUDNN_LOGLEVEL_DBG": "3", "CUDNN_LOGINFO_DBG": "1", "CUDNN_LOGERR_DBG": "1", "CUDNN_LOGWARN_DBG": "1"}
TIMEOUT_S = 300.0

_HEADER = re.compile(r"^[IWE]! CuDNN \(v[^)]*\) function (\w+)\(\) called:")
_FIELD = re.compile(r"^[iwe]!(\s+)([^:]*?):\s*(.*)$")
_ENGINE_FIELDS = ("engine_id", "engineid", "globalindex", "global_index", "cudnn_attr_engine_global_index")
_VAL = re.compile(r"val=(-?\d+)")


@dataclass(frozen=True)
class ApiCall:
    """One logged API call: the function and its (indent, name, rest of the line) fields in order."""

    function: str
    fields: tuple[tuple[int, str, str], ...]

    def engine(self) -> str | None:
        """``eng<id>`` where this record names the engine's global index: a nested ``engine_id`` field at any
        depth, or a ``CUDNN_ATTR_ENGINE_GLOBAL_INDEX`` attribute and its value (the ``[0]`` field after it)."""
        attribute = False
        for _, name, rest in self.fields:
            key = name.strip().lower().replace(" ", "")
            if "engine_global_index" in rest.lower():
                attribute = True
                continue
            if key in _ENGINE_FIELDS or (attribute and key == "[0]"):
                m = _VAL.search(rest)
                if m and int(m.group(1)) >= 0:
                    return f"eng{int(m.group(1))}"
        return None


def parse(text: str) -> list[ApiCall]:
    """The API calls of a cuDNN log, in order (lines outside a record are skipped)."""
    calls: list[ApiCall] = []
    function: str | None = None
    fields: list[tuple[int, str, str]] = []
    for line in text.splitlines():
        head = _HEADER.match(line)
        if head:
            if function is not None:
                calls.append(ApiCall(function, tuple(fields)))
            function, fields = head.group(1), []
            continue
        field = _FIELD.match(line)
        if field and function is not None:
            fields.append((len(field.group(1)), field.group(2), field.group(3)))
    if function is not None:
        calls.append(ApiCall(function, tuple(fields)))
    return calls


def engines_by_layer(text: str, layers: int) -> list[str | None]:
    """Each layer's engine, from a log of the child's run (two markers around each layer's second run).

    A log whose markers do not come in exactly ``2 x layers`` gives no layer an engine (the attribution would
    be a guess), with a warning.
    """
    calls = parse(text)
    marks = [i for i, c in enumerate(calls) if c.function == MARKER]
    if len(marks) != 2 * layers:
        log.warning(
            "cuDNN API log: %d marker calls for %d layers (expected %d); no engine recorded",
            len(marks),
            layers,
            2 * layers,
        )
        return [None] * layers
    out: list[str | None] = []
    for i in range(layers):
        segment = calls[marks[2 * i] + 1 : marks[2 * i + 1]]
        engines = [e for c in segment if c.function == EXECUTE and (e := c.engine()) is not None]
        out.append(engines[-1] if engines else None)
    return out


# -- the child process --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvCall:
    """One layer's convolution as the child replays it (the layers rows' geometry and input shape)."""

    in_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    bias: bool


@dataclass(frozen=True)
class Replay:
    """What the child runs: the layers, in order, with the job's dtype, math and cudnn.benchmark."""

    calls: tuple[ConvCall, ...]
    dtype: str
    math: str
    cudnn_benchmark: bool
    device: int = 0


def torch_engines(replay: Replay, timeout_s: float = TIMEOUT_S) -> list[str | None]:
    """Run ``replay`` in a child process with cuDNN's API log on; each layer's engine (see the module doc).
    Each distinct convolution is replayed once (resnet's repeated blocks share theirs).

    A child that fails or times out gives no engines (a warning says why): what ran is unknown, and the
    point's measurement is not affected.
    """
    unique = list(dict.fromkeys(replay.calls))  # a shape met again runs the plan PyTorch cached for it
    engines = dict(zip(unique, _engines(replace(replay, calls=tuple(unique)), timeout_s)))
    return [engines[c] for c in replay.calls]


def _engines(replay: Replay, timeout_s: float) -> list[str | None]:
    with tempfile.TemporaryDirectory(prefix="harness-cudnn-log-") as tmp:
        spec, path = Path(tmp) / "replay.json", Path(tmp) / "cudnn.log"
        spec.write_text(json.dumps(asdict(replay)))
        env = os.environ | LOG_LEVEL | {"CUDNN_LOGDEST_DBG": str(path)}
        cmd = [sys.executable, "-m", "harness.measure.cudnn_log", str(spec)]
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            log.warning("cuDNN API log: the replay took longer than %.0f s; no engine recorded", timeout_s)
            return [None] * len(replay.calls)
        if done.returncode != 0:
            log.warning("cuDNN API log: the replay failed (exit %d): %s", done.returncode, done.stderr[-500:])
            return [None] * len(replay.calls)
        text = path.read_text(errors="replace") if path.exists() else ""
    return engines_by_layer(text, len(replay.calls))


def _replay(replay: Replay) -> None:
    """The child: each convolution planned once, then run once between two marker calls."""
    import torch
    import torch.nn.functional as F

    from harness.algorithms.cudnn_library import Descriptor, library
    from harness.algorithms.flags import backend_flags

    dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[replay.dtype]
    device = torch.device("cuda", replay.device)
    cudnn = library()
    with torch.inference_mode(), backend_flags(replay.math, replay.cudnn_benchmark):
        for c in replay.calls:
            x = torch.randn(c.in_shape, device=device, dtype=dtype)
            w = torch.randn(c.weight_shape, device=device, dtype=dtype)
            b = torch.randn(c.weight_shape[0], device=device, dtype=dtype) if c.bias else None

            def conv() -> None:
                F.conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups)  # noqa: B023 - called at once
                torch.cuda.synchronize(device)

            conv()
            Descriptor(cudnn, "Tensor")  # marker: created and destroyed, one logged call each
            conv()
            Descriptor(cudnn, "Tensor")


def _load(path: Path) -> Replay:
    d = json.loads(path.read_text())
    calls = tuple(
        ConvCall(
            tuple(c["in_shape"]),
            tuple(c["weight_shape"]),
            tuple(c["stride"]),
            tuple(c["padding"]),
            tuple(c["dilation"]),
            int(c["groups"]),
            bool(c["bias"]),
        )
        for c in d["calls"]
    )
    return Replay(calls, d["dtype"], d["math"], bool(d["cudnn_benchmark"]), int(d.get("device", 0)))


def replay_of(records: Sequence[LayerRecord], dtype: str, math: str, benchmark: bool, device: int) -> Replay:
    """The replay of a point's conv layer calls (each its own input shape, weight and geometry)."""
    calls = []
    for r in records:
        g = conv_geometry(r.module)
        calls.append(
            ConvCall(
                tuple(int(v) for v in r.in_shape),
                tuple(int(v) for v in r.module.weight.shape),
                (g["stride_h"], g["stride_w"]),
                (g["pad_h"], g["pad_w"]),
                (g["dilation_h"], g["dilation_w"]),
                g["groups"],
                getattr(r.module, "bias", None) is not None,
            )
        )
    return Replay(tuple(calls), dtype, math, benchmark, device)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m harness.measure.cudnn_log REPLAY.json (run by harness.measure.cudnn_log)")
        return 2
    _replay(_load(Path(args[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
