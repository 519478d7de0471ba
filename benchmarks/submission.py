"""How many sbatch calls, and how long, to submit the quick stage of 6 models x 9 algorithms x 3 GPU types.

    python benchmarks/submission.py        # needs a SLURM cluster (scripts/slurm-test-cluster.sh)

Runs the real command (`python -m harness -m stage=quick ... launcher=slurm`) with a wrapper around sbatch
that counts its calls, prints the figures, then cancels the submitted jobs (their ids come from the
sweep's manifest), so nothing is left queued.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = "vgg16,densenet121,resnet152,googlenet,alexnet,resnet50"
ALGOS = "implicit_gemm,implicit_precomp_gemm,gemm,fft,fft_tiling,winograd,winograd_nonfused,guess,torch"


def main() -> None:
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        sys.exit("no sbatch on PATH: start a cluster (scripts/slurm-test-cluster.sh) or run on a login node")
    work = Path(tempfile.mkdtemp(prefix="harness-submission-"))
    (work / "bin").mkdir()
    calls = work / "sbatch.calls"
    wrapper = work / "bin" / "sbatch"
    wrapper.write_text(f'#!/bin/sh\necho call >> {calls}\nexec {sbatch} "$@"\n')
    wrapper.chmod(0o755)
    command = [
        sys.executable,
        "-m",
        "harness",
        "-m",
        "stage=quick",
        f"model={MODELS}",
        f"algo={ALGOS}",
        "gpu=l40s,h100,v100",
        "launcher=slurm",
    ]
    env = os.environ | {
        "PATH": f"{work / 'bin'}:{os.environ['PATH']}",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    t0 = time.perf_counter()
    proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    manifest = json.loads(next(work.glob("jobs/*/manifest.json")).read_text())
    arrays = [g["array_job_id"] for g in manifest["groups"]]
    subprocess.run(["scancel", *arrays], check=False)
    tasks = sum(len(g["tasks"]) for g in manifest["groups"])
    print(
        f"{tasks} tasks submitted in {len(calls.read_text().splitlines())} sbatch call(s) "
        f"(arrays {', '.join(arrays)}, cancelled again) in {seconds:.1f} s, the command's whole wall time"
    )


if __name__ == "__main__":
    main()
