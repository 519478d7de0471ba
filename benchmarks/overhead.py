"""The harness's median latency over a bare timing loop, same model, same input, same run.

    python benchmarks/overhead.py                   # resnet18 at 224 on this machine's device
    python benchmarks/overhead.py --model vgg16 --size 224 --rounds 5

Each round times the bare loop (perf_counter around each forward, or CUDA events on a GPU, nothing else)
and then the harness's timer (warmup, chunks, stopping rule) for the same number of iterations; the ratio
is median(harness p50) / median(bare p50) over the rounds, alternating to cancel drift. Goals: <= 1.02 on
the CPU, <= 1.01 on a GPU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from harness.measure.timing import SamplingPolicy, time_adaptively
from harness.models import build_model


def bare_p50(model: torch.nn.Module, x: torch.Tensor, iters: int) -> float:
    """A loop with none of the harness's code: a CUDA event pair around each forward, one synchronize."""
    if x.device.type == "cuda":
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iters)]
        for start, end in events:
            start.record()
            model(x)
            end.record()
        torch.cuda.synchronize(x.device)
        return float(np.median([s.elapsed_time(e) for s, e in events]))
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        model(x)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    model = build_model(args.model).to(device)
    x = torch.randn(1, 3, args.size, args.size, device=device)
    policy = SamplingPolicy(
        warmup_iters=0, warmup_s=0.0, min_iters=args.iters, max_iters=args.iters, max_time_s=600.0, target_ci_rel=1e-9
    )
    bare, harness = [], []
    with torch.inference_mode():
        for _ in range(5):
            model(x)  # warm
        for _ in range(args.rounds):
            bare.append(bare_p50(model, x, args.iters))
            harness.append(float(np.median(time_adaptively(lambda: model(x), device, policy).samples_ms)))
    print(f"{args.model} at {args.size}, {device}, {args.rounds} rounds x {args.iters} iterations")
    print(f"bare loop p50 per round (ms): {', '.join(f'{v:.3f}' for v in bare)}")
    print(f"harness   p50 per round (ms): {', '.join(f'{v:.3f}' for v in harness)}")
    print(f"overhead ratio harness / bare (median of rounds): {np.median(harness) / np.median(bare):.4f}")


if __name__ == "__main__":
    main()
