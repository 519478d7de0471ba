"""Wall time per point and the precision it buys: adaptive sampling at a 1% target against the fixed
10 warmup + 20 measured iterations of the system this harness replaces.

    python benchmarks/sweep_cost.py                       # resnet18, three sizes, this machine's device
    python benchmarks/sweep_cost.py --model vgg16 --sizes 224 320

Precision is the half-width of the 95% confidence interval of the median, relative to the median.
Both protocols run on the same model and inputs in the same run, one after the other per size.
"""

from __future__ import annotations

import argparse
import time

import torch

from harness.measure.timing import SamplingPolicy, time_adaptively
from harness.models import build_model
from harness.stats import ci_relative_halfwidth

FIXED = SamplingPolicy(warmup_iters=10, warmup_s=0.0, min_iters=20, max_iters=20, max_time_s=1e9, target_ci_rel=1e-9)
ADAPTIVE = SamplingPolicy(
    warmup_iters=10, warmup_s=1.0, min_iters=20, max_iters=1000, max_time_s=20.0, target_ci_rel=0.01
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 160, 224])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    model = build_model(args.model).to(device)
    print(f"{args.model} on {device}: protocol, size, wall s, n, p50 ms, CI half-width of the median")
    for size in args.sizes:
        x = torch.randn(1, 3, size, size, device=device)
        with torch.inference_mode():
            for name, policy in (("fixed 10+20", FIXED), ("adaptive 1%", ADAPTIVE)):
                t0 = time.perf_counter()
                t = time_adaptively(lambda: model(x), device, policy)
                wall = time.perf_counter() - t0
                s = sorted(t.samples_ms)
                bound = "" if name.startswith("fixed") or t.target_met else " (bound reached)"
                print(
                    f"{name:12s} {size:4d} {wall:7.2f} s  n={len(s):4d}  p50={s[len(s) // 2]:8.3f} ms  "
                    f"+-{100 * ci_relative_halfwidth(s):.2f}%{bound}"
                )


if __name__ == "__main__":
    main()
