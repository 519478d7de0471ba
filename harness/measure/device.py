"""Which device a run measures on, and the refusal to measure on the wrong one."""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.config.gpus import GpuType
from harness.errors import ConfigError, DeviceMismatchError


@dataclass(frozen=True)
class DeviceInfo:
    device: torch.device
    name: str  # e.g. "NVIDIA H100 80GB HBM3", or the CPU's model name


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def what_this_machine_has() -> str:
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return "CUDA device(s): " + ", ".join(names)
    return f"no CUDA GPU, only the CPU ({cpu_name()})"


V100_FIX = (
    "install a PyTorch build that has sm_70 kernels, e.g. PyTorch's CUDA 12.6 wheels: "
    "pip install torch torchvision --index-url https://download.pytorch.org/whl/cu126 "
    "(check: python -c 'import torch; print(torch.cuda.get_arch_list())' lists sm_70); README: 'Mixed clusters'"
)


def build_runs_on(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """Whether a torch build compiled for ``arch_list`` (torch.cuda.get_arch_list()) has kernels that run
    on a device of compute ``capability``.

    CUDA's rules: machine code for sm_XY runs on X.Z for Z >= Y (same major); arch-specific code (sm_90a)
    only on exactly that capability; PTX for compute_XY is compiled at load time for any capability >= X.Y.
    """
    major, minor = capability
    for arch in arch_list:
        kind, _, number = arch.partition("_")
        digits = number.rstrip("af")
        if not digits.isdigit():
            continue
        arch_major, arch_minor = divmod(int(digits), 10)
        if kind == "sm" and arch_major == major and (arch_minor == minor if number != digits else arch_minor <= minor):
            return True
        if kind == "compute" and (arch_major, arch_minor) <= (major, minor):
            return True
    return False


def environment_fix(gpu_name: str | None) -> str:
    """How to send this GPU type's jobs to an environment with the right build (README: 'Mixed clusters')."""
    name = gpu_name if gpu_name and gpu_name != "local" else "<type>"
    return (
        f"; on SLURM, point gpu={name}'s jobs at it: gpu.python=/path/to/that/env/bin/python or "
        f"gpu.container=IMAGE.sif (conf/gpu/{name}.yaml; containers/ has a V100 image; README: 'Mixed clusters')"
    )


def check_build_has_kernels(index: int, gpu_name: str | None = None) -> None:
    """Refuse a CUDA device that this torch build has no kernels for (a V100, sm_70, with the default
    wheel), before anything runs: otherwise every kernel fails and every point becomes an error. The fix
    names the environment keys of ``gpu_name``, the configured GPU type."""
    capability = torch.cuda.get_device_capability(index)
    arch_list = torch.cuda.get_arch_list()
    if build_runs_on(capability, arch_list):
        return
    sm = f"sm_{capability[0]}{capability[1]}"
    raise DeviceMismatchError(
        f"this PyTorch build ({torch.__version__}, CUDA {torch.version.cuda}) has kernels for "
        f"{', '.join(arch_list) or 'no GPU architecture'}, not for this {torch.cuda.get_device_name(index)} "
        f"(compute capability {capability[0]}.{capability[1]}, {sm}): every kernel would fail. Nothing was "
        f"measured (interpreter: {sys.executable}). Fix: "
        + (V100_FIX if sm == "sm_70" else f"install a PyTorch build that includes {sm}")
        + environment_fix(gpu_name)
    )


def resolve_device(requested: str, gpu: GpuType) -> DeviceInfo:
    """The device to measure on, given ``device=`` (auto|cpu|cuda) and the configured GPU type."""
    has_cuda = torch.cuda.is_available()
    if gpu.nvml_name is not None:  # a named GPU type: only that GPU will do
        if requested == "cpu":
            raise ConfigError(
                f"gpu={gpu.name} measures on a GPU, but device=cpu was asked; "
                f"to measure the CPU use gpu=local device=cpu"
            )
        if not has_cuda:
            raise DeviceMismatchError(_mismatch(gpu))
        name = torch.cuda.get_device_name(torch.cuda.current_device())
        if gpu.nvml_name.lower() not in name.lower():
            raise DeviceMismatchError(_mismatch(gpu))
        return DeviceInfo(torch.device("cuda", torch.cuda.current_device()), name)
    if requested == "cuda" and not has_cuda:
        raise DeviceMismatchError(
            f"device=cuda was asked, but this machine has {what_this_machine_has()}; use device=auto or device=cpu"
        )
    if requested == "cpu" or not has_cuda:
        return DeviceInfo(torch.device("cpu"), cpu_name())
    index = torch.cuda.current_device()
    return DeviceInfo(torch.device("cuda", index), torch.cuda.get_device_name(index))


def _mismatch(gpu: GpuType) -> str:
    return (
        f"gpu={gpu.name} asks for a GPU whose name contains {gpu.nvml_name!r}, but this machine has "
        f"{what_this_machine_has()}. Nothing was measured. To measure this machine, use gpu=local; "
        f"to measure on a {gpu.name}, run on a node that has one (e.g. through SLURM)."
    )
