"""Per-layer time of each convolution algorithm against F.conv2d, and (on a GPU) whole-model guess/torch.

    python benchmarks/algorithms.py                 # CPU: the reference algorithms, vgg16/resnet50 layers
    python benchmarks/algorithms.py --size 224      # the layers' shapes at another model input size
    python benchmarks/algorithms.py --device cuda   # GPU: cuDNN's algorithms too, and guess vs torch models

Every ratio is measured side by side in the same run (the machine is shared and noisy): each layer's
algorithms are timed one after another with the same timer, and the ratio is p50(algorithm) / p50(F.conv2d).
Both sides run the same math (``--math``, default fma: strict FP32): cuDNN's math type and PyTorch's TF32
flags are set together (harness.algorithms.backend_flags) and restored at the end.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from harness.algorithms import backend_flags, cudnn, reference, swap
from harness.algorithms.geometry import ConvGeometry
from harness.measure.timing import SamplingPolicy, time_adaptively
from harness.models import build_model

# (model, layer) pairs covering the shapes that matter: 3x3 at several widths, 1x1, the 7x7 stride-2 stem.
LAYERS = [
    ("vgg16", "features.2"),
    ("vgg16", "features.12"),
    ("vgg16", "features.24"),
    ("resnet50", "conv1"),
    ("resnet50", "layer1.0.conv1"),
    ("resnet50", "layer3.0.conv2"),
    ("resnet50", "layer4.0.conv3"),
]
POLICY = SamplingPolicy(warmup_iters=2, warmup_s=0.0, min_iters=5, max_iters=30, max_time_s=2.0, target_ci_rel=0.05)


def layer_inputs(size: int, device: torch.device) -> list[tuple[str, torch.nn.Conv2d, tuple[int, ...]]]:
    """The LAYERS with their own input shapes at model input ``size`` (from a real forward)."""
    found: dict[tuple[str, str], tuple[torch.nn.Conv2d, tuple[int, ...]]] = {}
    for model_name in dict.fromkeys(m for m, _ in LAYERS):
        model = build_model(model_name).to(device)

        def record(module, args, output, key) -> None:
            found.setdefault(key, (module, tuple(args[0].shape)))

        hooks = [
            model.get_submodule(layer).register_forward_hook(lambda m, a, o, k=(m_name, layer): record(m, a, o, k))
            for m_name, layer in LAYERS
            if m_name == model_name
        ]
        with torch.inference_mode():
            model(torch.randn(1, 3, size, size, device=device))
        for h in hooks:
            h.remove()
    return [(f"{m}.{layer}", *found[(m, layer)]) for m, layer in LAYERS]


def p50(fn, device: torch.device) -> float:
    return float(torch.tensor(time_adaptively(fn, device, POLICY).samples_ms).median())


def layer_table(size: int, device: torch.device, math: str) -> Table:
    algos = list(reference.REFERENCE_ALGORITHMS)
    if device.type == "cuda":
        algos = [a for a in cudnn.FWD_ALGOS if a != "direct"] + ["guess"]
    table = Table(title=f"per-layer p50 ms and ratio to F.conv2d ({device.type}, model input {size}, math {math})")
    for col in ["layer", "geometry", "input", "F.conv2d", *algos]:
        table.add_column(col, justify="left" if col in ("layer", "geometry", "input") else "right")
    for name, conv, shape in layer_inputs(size, device):
        g = ConvGeometry.of(conv)
        x = torch.randn(shape, device=device)
        with torch.inference_mode():
            base = p50(lambda: F.conv2d(x, conv.weight, conv.bias, g.stride, g.padding, g.dilation, g.groups), device)
            cells = []
            for algo in algos:
                try:
                    if device.type == "cuda":
                        run = cudnn.CudnnConvPlan.build(algo, conv.weight, conv.bias, g, x, math)
                    else:
                        run = reference.make_runner(algo, conv.weight, conv.bias, g, shape[2:])
                except (ValueError, cudnn.CudnnNotSupported, cudnn.WorkspaceOutOfMemory):
                    cells.append("n/s")
                    continue
                t = p50(lambda: run(x), device)
                cells.append(f"{t:.3f} ({t / base:.1f}x)")
        table.add_row(name, g.describe(), "x".join(map(str, shape[1:])), f"{base:.3f}", *cells)
    return table


def model_table(size: int, device: torch.device, math: str) -> Table:
    """Whole-model p50 with every layer on cuDNN's guess through our backend, over PyTorch's own."""
    table = Table(title=f"whole model: algo=guess (our cuDNN calls) / algo=torch, input {size}, batch 1, math {math}")
    for col in ("model", "torch ms", "guess ms", "ratio"):
        table.add_column(col, justify="right")
    for name in ("vgg16", "resnet50"):
        model = build_model(name).to(device)
        x = torch.randn(1, 3, size, size, device=device)
        with torch.inference_mode():
            t_torch = p50(lambda: model(x), device)
            with swap(model, "guess", backend="cudnn", math=math):
                model(x)  # plans every layer
                t_guess = p50(lambda: model(x), device)
        table.add_row(name, f"{t_torch:.3f}", f"{t_guess:.3f}", f"{t_guess / t_torch:.3f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=112, help="model input size the layer shapes come from")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--math", choices=("fma", "tensor_op"), default="fma", help="math of both sides (GPU)")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    console = Console(width=200)
    console.print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    with backend_flags(args.math, cudnn_benchmark=False):  # F.conv2d and cuDNN: the same math
        console.print(layer_table(args.size, device, args.math))
        if device.type == "cuda":
            console.print(model_table(224, device, args.math))


if __name__ == "__main__":
    main()
