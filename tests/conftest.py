"""Shared fixtures: fast settings for real runs, and a way to call the CLI as a user would."""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent

# Small and quick: a real model, real measurement, a fraction of a second per point. On the CPU, also where
# a CUDA GPU exists (device=auto would measure on it: cuDNN backend, energy columns, other dtypes allowed);
# a test that wants another device adds device=... after FAST (Hydra: the last override of a key wins).
# stage.sizes stays first: tests/test_launch.py drops it with FAST[1:].
FAST = [
    "stage.sizes=[32]",
    "stage.warmup_iters=1",
    "stage.min_iters=3",
    "stage.max_iters=5",
    "stage.max_time_s=1",
    "stage.layer_iters=2",
    "device=cpu",
]


def has_cuda_device_named(fragment: str) -> bool:
    """Whether this machine has a CUDA device whose name contains ``fragment`` (as gpu=<type> checks it)."""
    if not torch.cuda.is_available():
        return False
    return any(fragment.lower() in torch.cuda.get_device_name(i).lower() for i in range(torch.cuda.device_count()))


class _Driver:
    """One process (tests/cli_driver.py) per test worker that runs `python -m ...` commands one after
    another, so that each command does not pay ~7 s of imports; started on first use."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.answers = None
        self.log = Path(tempfile.mkdtemp(prefix="cli-driver-")) / "stderr.txt"

    def _start(self) -> None:
        read_end, write_end = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.cli_driver", str(write_end)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
            pass_fds=(write_end,),
            text=True,
            env=os.environ | {"PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"},
        )
        os.close(write_end)
        self.answers = os.fdopen(read_end)
        self._read(timeout=600, what="start")  # {"ready": true}: imports are slow on a busy machine

    def _read(self, timeout: float, what: str) -> dict:
        ready, _, _ = select.select([self.answers], [], [], timeout)
        line = self.answers.readline() if ready else ""
        if not line:
            self.stop()
            if not ready:
                raise subprocess.TimeoutExpired(what, timeout)
            raise RuntimeError(f"the CLI driver died during {what}: {self.log.read_text()[-3000:]}")
        return json.loads(line)

    def run(self, module: str, args: list[str], cwd: str, env: dict[str, str], timeout: float):
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        request = {"module": module, "args": args, "cwd": cwd, "env": env}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = self._read(timeout, f"python -m {module} {' '.join(args)}")
        return subprocess.CompletedProcess(
            [sys.executable, "-m", module, *args], answer["returncode"], answer["stdout"], answer["stderr"]
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


_DRIVER = _Driver()
atexit.register(_DRIVER.stop)


def run_cli(
    *args: str,
    cwd: Path | None = None,
    module: str = "harness",
    timeout: int = 300,
    env: dict[str, str] | None = None,
    fresh: bool = False,
) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` as a user types it, in ``cwd`` (a fresh folder by default, so Hydra's jobs/
    logs never land in the repo), with this process's environment plus ``env``.

    It runs in the worker's CLI driver (tests/cli_driver.py: the same entry point, argv, folder and environment,
    without paying the imports again), or with ``fresh=True`` in a new interpreter, for what needs a process of
    its own. ``timeout`` catches a hang: generous, never a measure of speed.
    """
    env = os.environ | {"PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"} | (env or {})
    cwd = str(cwd or tempfile.mkdtemp(prefix="harness-cli-"))
    if not fresh:
        return _DRIVER.run(module, list(args), cwd, env, timeout)
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return tmp_path / "results"


def _waits_on_slurm(item: pytest.Item) -> bool:
    return any(m.args == ("slurm",) for m in item.iter_markers("xdist_group"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The SLURM tests wait on the cluster more than they compute and run one after the other on one worker:
    # first, so the other workers' tests fill those minutes instead of leaving them for the end.
    items.sort(key=lambda item: not _waits_on_slurm(item))
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
