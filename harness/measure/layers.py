"""The per-layer pass: each conv layer's own shapes and its time, in a pass of its own.

Hooks are attached only inside ``LayerProbe``'s ``with`` block, so whole-model timing never runs with
them. A layer is one call of a convolution module in execution order; a module called twice per forward
gives two layers with the same name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn


def is_conv(module: nn.Module) -> bool:
    """A 2-d convolution: torch's own or one of our algorithm modules that stands in for it."""
    return isinstance(module, nn.Conv2d) or getattr(module, "is_conv2d_stand_in", False)


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def conv_geometry(m: nn.Module) -> dict[str, int]:
    """The layers table's description of a convolution module (padding "same"/"valid" made numeric)."""
    kh, kw = _pair(m.kernel_size)
    dh, dw = _pair(m.dilation)
    if m.padding == "valid":
        ph, pw = 0, 0
    elif m.padding == "same":  # symmetric part of "same" padding
        ph, pw = dh * (kh - 1) // 2, dw * (kw - 1) // 2
    else:
        ph, pw = _pair(m.padding)
    sh, sw = _pair(m.stride)
    return {
        "in_channels": int(m.in_channels), "out_channels": int(m.out_channels),
        "kernel_h": kh, "kernel_w": kw, "stride_h": sh, "stride_w": sw, "pad_h": ph, "pad_w": pw,
        "dilation_h": dh, "dilation_w": dw, "groups": int(m.groups),
    }


@dataclass
class LayerRecord:
    index: int
    name: str
    module: nn.Module
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    times_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        x = np.asarray(self.times_ms, dtype=float)
        return {
            "n": int(x.size),
            "mean_ms": float(x.mean()) if x.size else None,
            "p50_ms": float(np.median(x)) if x.size else None,
            "std_ms": float(x.std(ddof=1)) if x.size > 1 else None,
        }


class LayerProbe:
    """Attach timing hooks to every conv layer of ``model``; ``run`` a forward and collect per-layer times."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.model = model
        self.device = device
        self.names = {m: name for name, m in model.named_modules() if is_conv(m)}
        self.records: list[LayerRecord] = []
        self._handles: list[Any] = []
        self._call = 0  # position of the next conv call within the current forward
        self._pending: list[tuple[Any, Any]] = []
        self._first = True

    def __enter__(self) -> "LayerProbe":
        for module in self.names:
            self._handles.append(module.register_forward_pre_hook(self._pre))
            self._handles.append(module.register_forward_hook(self._post))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _now(self) -> Any:
        if self.device.type == "cuda":
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter_ns()

    def _pre(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self._start = self._now()

    def _post(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        end = self._now()
        if self._first:
            self.records.append(
                LayerRecord(len(self.records), self.names[module], module, tuple(args[0].shape), tuple(output.shape))
            )
        self._pending.append((self._start, end))
        self._call += 1

    def run(self, forward: Callable[[], object]) -> None:
        """One forward pass with timing; synchronizes once at its end."""
        self._call = 0
        self._pending = []
        forward()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            times = [s.elapsed_time(e) for s, e in self._pending]
        else:
            times = [(e - s) / 1e6 for s, e in self._pending]
        if len(times) != len(self.records):
            raise RuntimeError(
                f"the model made {len(times)} conv calls in this forward, {len(self.records)} in the first"
            )
        for rec, t in zip(self.records, times):
            rec.times_ms.append(t)
        self._first = False
