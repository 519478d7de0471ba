"""Each conv layer's own shapes, traced from the torchvision architecture on the meta device.

The old system's layer files hold only the MODEL's input size; a layer's own input and output sizes come
from running the model (random weights, meta device: shapes only, no memory, no arithmetic) at that model
input size with a forward hook on every conv module. One trace per (model, input size), cached.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from harness.measure.layers import conv_geometry, is_conv
from harness.measure.roofline import conv_bytes
from harness.models import meta_model


@dataclass(frozen=True)
class TracedLayer:
    index: int  # order of execution (first call)
    name: str  # module path, e.g. "features.denseblock1.denselayer1.conv1"
    geometry: dict  # conv_geometry(): in/out channels, kernel, stride, pad, dilation, groups
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    flops: int  # 2 x multiply-adds, batch 1
    bytes: int  # input + weights + output, fp32, each moved once


@dataclass(frozen=True)
class Trace:
    model: str
    input_size: int
    layers: dict[str, TracedLayer]  # by module name
    flops: int  # whole forward, batch 1
    params: int


@functools.lru_cache(maxsize=1024)
def trace(model: str, input_size: int, batch_size: int = 1) -> Trace:
    """Shapes of every conv layer of ``model`` at ``batch x 3 x input_size x input_size`` (cached)."""
    net = meta_model(model, {})
    names = {m: n for n, m in net.named_modules() if is_conv(m)}
    found: dict[str, TracedLayer] = {}

    def hook(module, args, output) -> None:
        name = names[module]
        if name in found:  # a module called twice: its first call counts (none in these models)
            return
        geo = conv_geometry(module)
        in_shape, out_shape = tuple(args[0].shape), tuple(output.shape)
        flops = 2 * math.prod(out_shape) * (geo["in_channels"] // geo["groups"]) * geo["kernel_h"] * geo["kernel_w"]
        found[name] = TracedLayer(
            len(found),
            name,
            geo,
            in_shape,
            out_shape,
            int(flops),
            conv_bytes(in_shape, out_shape, module.weight.numel(), "float32"),
        )

    handles = [m.register_forward_hook(hook) for m in names]
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            net(torch.empty(batch_size, 3, input_size, input_size, device="meta"))
    finally:
        for h in handles:
            h.remove()
    params = sum(p.numel() for p in net.parameters())
    return Trace(model, input_size, found, int(counter.get_total_flops()), int(params))
