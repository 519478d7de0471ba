"""The per-layer pass: each conv layer's own shapes and its time, in a pass of its own.

Hooks are attached only inside ``LayerProbe``'s ``with`` block, so whole-model timing never runs with
them. A layer is one call of a convolution module in execution order; a module called twice per forward
gives two layers with the same name.

On a GPU each layer's events time its kernels only, not the host's time to issue them (``HeadStart``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from harness.results.hostbound import HOST_BOUND  # noqa: F401  (its home since the host_bound column; kept here)
from harness.stats import layer_summary

log = logging.getLogger(__name__)

HEAD_START_CYCLES = 2_000_000  # about 1 ms at 2 GHz: the first guess of the host's time to issue one layer
HEAD_START_MAX_CYCLES = 128_000_000  # about 64 ms: beyond this the host's issuing is not what holds the layer
HEAD_START_GROWTH = 4


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
        "in_channels": int(m.in_channels),
        "out_channels": int(m.out_channels),
        "kernel_h": kh,
        "kernel_w": kw,
        "stride_h": sh,
        "stride_w": sw,
        "pad_h": ph,
        "pad_w": pw,
        "dilation_h": dh,
        "dilation_w": dw,
        "groups": int(m.groups),
    }


def with_share_of_model(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (a pass's layer rows) with ``share_of_model``: each row's mean over the sum of the rows' means
    (None where a row has no mean or nothing was timed); modified in place and returned."""
    total = sum(r.get("mean_ms") or 0.0 for r in rows)
    for r in rows:
        r["share_of_model"] = r["mean_ms"] / total if r.get("mean_ms") is not None and total > 0 else None
    return rows


@dataclass
class LayerRecord:
    index: int
    name: str
    module: nn.Module
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    times_ms: list[float] = field(default_factory=list)
    # GPU: the longest head start did not cover the host's issuing of this layer (True) or every pass's did
    # (False); None where no head start timed it (the CPU, a pass without one)
    host_bound: bool | None = None

    def summary(self) -> dict[str, Any]:
        return layer_summary(self.times_ms)


class HeadStart:
    """Keeps the GPU busy while the host issues one layer, so that the layer's events time its kernels only.

    At batch 1 the host can take longer to issue a layer (Python, hooks, ctypes, cuDNN's own host work) than
    the GPU takes to run it: events recorded around the call then measure the host, and the per-layer times,
    the oracle and the plans made from them say more about the CPU than about the algorithm. Before each
    layer a spin kernel (``torch.cuda._sleep``) holds the stream; the start event, the layer's kernels and
    the end event queue up behind it and run back to back. Whether the spin outlasted the host's issuing is
    known exactly, not assumed: the start event must still be pending when the host has recorded the end
    event (``covered``). Where it was not, that layer's spin grows ``HEAD_START_GROWTH`` times (each layer its
    own, so one slow layer does not slow the others) and the pass is run again.
    """

    def __init__(self, cycles: int = HEAD_START_CYCLES, max_cycles: int = HEAD_START_MAX_CYCLES) -> None:
        self.first = cycles
        self.max_cycles = max_cycles
        self.cycles: dict[int, int] = {}  # a layer's (call's) spin, where it grew

    def cycles_for(self, call: int) -> int:
        return self.cycles.get(call, self.first)

    def begin(self, call: int) -> Any:
        """Start the spin for the ``call``-th layer of the forward, then record (and return) its start event."""
        torch.cuda._sleep(self.cycles_for(call))
        start = torch.cuda.Event(enable_timing=True)
        start.record()
        return start

    def covered(self, start: Any) -> bool:
        """True while the GPU has not reached ``start``: all the layer's work was queued behind the spin."""
        return not start.query()

    def grow(self, calls: list[int]) -> bool:
        """Longer spins for these layers; False when each of them is already at its longest."""
        grown = False
        for call in calls:
            now = self.cycles_for(call)
            if now < self.max_cycles:
                self.cycles[call] = min(now * HEAD_START_GROWTH, self.max_cycles)
                grown = True
        return grown


class LayerProbe:
    """Attach timing hooks to every conv layer of ``model``; ``run`` a forward and collect per-layer times.

    ``head_start`` (GPU): time each layer behind a ``HeadStart`` (default), a given one, or not at all
    (False: for a forward that is not a measurement, e.g. one that plans and synchronizes).
    ``before_layer`` (l2=cold: harness.measure.cache's flush) runs before each layer, outside its interval:
    on a GPU queued ahead of the head start's spin and the start event, on the CPU before perf_counter.
    """

    def __init__(
        self,
        model: nn.Module,
        device: torch.device,
        head_start: HeadStart | bool = True,
        before_layer: Callable[[], object] | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.before_layer = before_layer
        self.names = {m: name for name, m in model.named_modules() if is_conv(m)}
        self.records: list[LayerRecord] = []
        self._handles: list[Any] = []
        self._call = 0  # position of the next conv call within the current forward
        self._pending: list[tuple[Any, Any]] = []
        self._first = True
        if isinstance(head_start, HeadStart):
            self.head: HeadStart | None = head_start
        else:
            self.head = HeadStart() if head_start and device.type == "cuda" else None
        self._host_bound_calls: list[int] = []  # calls of this pass whose spin ended before the host issued them

    @property
    def host_bound_layers(self) -> set[str]:
        """The layers (names) whose times include host time after every retry (records marked host_bound)."""
        return {r.name for r in self.records if r.host_bound}

    def __enter__(self) -> LayerProbe:
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
        if self.before_layer is not None:
            self.before_layer()
        self._start = self.head.begin(self._call) if self.head is not None else self._now()

    def _post(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        end = self._now()
        if self.head is not None and not self.head.covered(self._start):
            self._host_bound_calls.append(self._call)
        if self._first:
            self.records.append(
                LayerRecord(len(self.records), self.names[module], module, tuple(args[0].shape), tuple(output.shape))
            )
        self._pending.append((self._start, end))
        self._call += 1

    def run(self, forward: Callable[[], object]) -> None:
        """One forward pass with timing; synchronizes once at its end.

        With a head start, a pass where some layer's spin ended too soon is run again with longer spins for
        those layers; where the longest still falls short, the times are kept, the layers named in
        ``host_bound_layers`` and their records marked ``host_bound`` (the layers rows' ``host_bound`` column,
        and ``detail``); the others are marked covered (False). Without a head start the marks stay None.
        """
        while True:
            times = self._pass(forward)
            if not self._host_bound_calls or self.head is None or not self.head.grow(self._host_bound_calls):
                break
            log.debug(
                "layer pass: %d layer(s) were issued after the GPU's head start ran out; again with longer " "ones",
                len(self._host_bound_calls),
            )
        if self._host_bound_calls:
            names = sorted({self.records[i].name for i in self._host_bound_calls})
            if not set(names) <= self.host_bound_layers:
                log.warning(
                    "the times of layer(s) %s include host time: the host took longer to issue them than "
                    "a head start of %d GPU cycles",
                    ", ".join(names),
                    self.head.max_cycles if self.head else 0,
                )
        if self.head is not None:
            late = set(self._host_bound_calls)
            for i, rec in enumerate(self.records):
                rec.host_bound = bool(rec.host_bound) or i in late  # once host-bound in a pass, host-bound
        for rec, t in zip(self.records, times):
            rec.times_ms.append(t)

    def _pass(self, forward: Callable[[], object]) -> list[float]:
        self._call = 0
        self._pending = []
        self._host_bound_calls = []
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
        self._first = False
        return times
