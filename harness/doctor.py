"""`python -m harness.doctor`: check this machine before GPU hours are spent.

Each line says ok / warning / problem, what was found, and a one-line fix. The exit code is 1 when
something the run described by the arguments needs is missing (by default: the built-in local run), so a
job script can call it first:

    python -m harness.doctor                       # can the default run work here?
    python -m harness.doctor --gpu l40s --algo gemm --slurm
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from harness import algorithms, validate
from harness.cli import ArgumentParser, command
from harness.config.gpus import load_gpu_types
from harness.config.groups import group_choices
from harness.errors import DeviceMismatchError
from harness.measure.device import check_build_has_kernels, what_this_machine_has
from harness.measure.hardware import Hardware, detect_hardware

OK, WARNING, PROBLEM = "ok", "warning", "problem"


@dataclass(frozen=True)
class DoctorCheck:
    name: str
    status: str
    found: str
    fix: str = ""
    needed: bool = False  # a problem with a needed check makes the exit code 1


Check = DoctorCheck  # the old name (the acceptance command has its own AcceptanceCheck)


def python_and_packages() -> list[DoctorCheck]:
    import torchvision

    py = sys.version_info
    checks = [
        DoctorCheck(
            "python", OK if py >= (3, 10) else PROBLEM, sys.version.split()[0], "use Python 3.10 or newer", needed=True
        )
    ]
    checks.append(
        DoctorCheck("torch", OK, f"{torch.__version__} (CUDA build {torch.version.cuda or 'none'})", needed=True)
    )
    checks.append(DoctorCheck("torchvision", OK, torchvision.__version__, needed=True))
    return checks


def gpu_checks(gpu_name: str, algo: str) -> list[DoctorCheck]:
    wants_gpu = gpu_name != "local"
    if not torch.cuda.is_available():
        return [
            DoctorCheck(
                "cuda device",
                PROBLEM if wants_gpu else WARNING,
                what_this_machine_has(),
                "run on a GPU node (gpu=<type> through SLURM) or measure the CPU with gpu=local",
                needed=wants_gpu,
            )
        ]
    name = torch.cuda.get_device_name()
    matches = [g for g, gpu in load_gpu_types().items() if gpu.nvml_name and gpu.nvml_name.lower() in name.lower()]
    checks = [
        DoctorCheck(
            "cuda device",
            OK,
            f"{name} (CUDA {torch.version.cuda}); gpu configs: {', '.join(matches) or 'none, use gpu=local'}",
        )
    ]
    checks.append(arch_check(torch.cuda.current_device(), gpu_name))
    if wants_gpu and gpu_name not in matches:
        checks.append(
            DoctorCheck(
                f"gpu={gpu_name}",
                PROBLEM,
                f"this GPU is {name}",
                f"use gpu={matches[0] if matches else 'local'}",
                needed=True,
            )
        )
    checks += cudnn_checks(needed=algo not in ("torch",) + algorithms.reference.REFERENCE_ALGORITHMS)
    checks += nvml_checks()
    device = torch.device("cuda", torch.cuda.current_device())
    checks += inventory_checks(detect_hardware(device, load_gpu_types()[gpu_name].spec))
    return checks


def inventory_checks(hardware: Hardware) -> list[DoctorCheck]:
    """The device as NVML describes it (what every row will carry), the SKU it matched and the peaks the
    roofline will use; a warning where something will weigh on the numbers or none is known."""
    inv = hardware.inventory
    checks = [DoctorCheck(f"gpu {what}", OK, value) for what, value in (inv.lines() if inv else [])]
    for i, c in enumerate(checks):
        if c.name == "gpu other processes" and inv.other_processes not in (None, "none"):
            checks[i] = DoctorCheck(
                c.name, WARNING, c.found, "measure on an idle GPU: other processes share its time, memory and power"
            )
        capped = inv.power_limit_w is not None and (inv.power_limit_default_w or 0) > inv.power_limit_w
        if c.name == "gpu power limit" and capped:
            checks[i] = DoctorCheck(c.name, WARNING, c.found, "the board is capped below its default power limit")
    known = hardware.peaks.spec is not None
    checks.append(
        DoctorCheck(
            "gpu sku and peaks",
            OK if known else WARNING,
            hardware.peaks.why,
            "" if known else "add the board to conf/skus.yaml (its datasheet's dense peaks, cited) or set gpu.spec.*",
        )
    )
    return checks


def arch_check(index: int, gpu_name: str | None = None) -> DoctorCheck:
    """Whether this torch build has kernels for the device (a V100 needs a build with sm_70)."""
    try:
        check_build_has_kernels(index, gpu_name)
    except DeviceMismatchError as e:
        found, _, fix = str(e).partition(" Fix: ")
        return DoctorCheck("torch build arch", PROBLEM, found, fix, needed=True)
    major, minor = torch.cuda.get_device_capability(index)
    return DoctorCheck("torch build arch", OK, f"sm_{major}{minor} in {', '.join(torch.cuda.get_arch_list())}")


def cudnn_checks(needed: bool) -> list[DoctorCheck]:
    from harness.algorithms import cudnn

    try:
        lib = cudnn.library()
        cudnn.handle_for(torch.device("cuda", torch.cuda.current_device()))
    except (cudnn.CudnnError, cudnn.CudnnUnavailable) as e:
        return [
            DoctorCheck(
                "cudnn", PROBLEM, str(e), "install a PyTorch build with cuDNN 9 and check the driver", needed=needed
            )
        ]
    return [DoctorCheck("cudnn", OK, f"{lib.version()} at {lib.path}; handle created")]


def nvml_checks() -> list[DoctorCheck]:
    from harness.measure.energy import NvmlGpu, pci_bus_id

    gpu = NvmlGpu.open(pci_bus_id(torch.device("cuda", torch.cuda.current_device())))
    if gpu is None:
        return [
            DoctorCheck(
                "nvml", WARNING, "NVML not usable: energy is not measured", "install nvidia-ml-py and check the driver"
            )
        ]
    if not gpu.has_counter:
        return [
            DoctorCheck(
                "nvml energy counter",
                WARNING,
                f"{gpu.name()}: no energy counter (pre-Volta?)",
                "energy falls back to the power integral (energy_method=nvml_power_integral)",
            )
        ]
    return [
        DoctorCheck(
            "nvml energy counter",
            OK,
            f"{gpu.name()}; instant power {'yes' if gpu.has_instant_power else 'no (1 s average)'}",
        )
    ]


def cpu_energy_checks(root: Path | None = None) -> list[DoctorCheck]:
    """Whether CPU runs can measure energy (RAPL through powercap), and if not, why: no driver or a virtual
    machine, or counters readable by root only. Never blocking: the energy columns stay null without it."""
    from harness.measure import rapl

    found = rapl.probe(root)
    if found.readable:
        method = rapl.RaplMeter(found.zones).method
        return [
            DoctorCheck(
                "cpu energy (rapl)", OK, f"{found.describe()}: CPU runs measure energy (energy_method={method})"
            )
        ]
    return [DoctorCheck("cpu energy (rapl)", WARNING, f"{found.problem}: CPU runs record no energy", found.fix)]


def algorithm_checks(algo: str) -> list[DoctorCheck]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backend = algorithms.resolve_backend("auto", device)
    here = algorithms.runnable_on(device, backend)
    if device.type == "cuda":
        here = tuple(dict.fromkeys(here + algorithms.runnable_on(device, "reference")))  # direct: backend=reference
    if algo in here:
        return [DoctorCheck("algorithms", OK, f"on {device.type} ({backend} by default): {', '.join(here)}")]
    return [
        DoctorCheck(
            "algorithms",
            PROBLEM,
            f"algo={algo} cannot run on {device.type}; here: {', '.join(here)}",
            "run it on a GPU node",
            needed=True,
        )
    ]


def slurm_checks(needed: bool) -> list[DoctorCheck]:
    missing = [c for c in ("sbatch", "squeue", "sacct", "scontrol") if shutil.which(c) is None]
    if missing:
        return [
            DoctorCheck(
                "slurm",
                PROBLEM if needed else WARNING,
                f"not found: {', '.join(missing)}",
                "load your site's SLURM module, or run locally",
                needed=needed,
            )
        ]
    try:
        proc = subprocess.run(["sacct", "-n", "-X", "-S", "now"], capture_output=True, text=True, timeout=10)
        ok = proc.returncode == 0
        found = "accounting reachable" if ok else f"sacct failed: {proc.stderr.strip()[:120]}"
    except subprocess.TimeoutExpired:
        ok, found = False, "sacct timed out after 10 s"
    return [
        DoctorCheck(
            "slurm accounting",
            OK if ok else PROBLEM,
            found,
            "" if ok else "ask your admins: job states need slurmdbd",
            needed=needed,
        )
    ]


def writable_checks(results: Path, jobs: Path) -> list[DoctorCheck]:
    checks = []
    for label, path in (("results dir", results), ("jobs dir", jobs)):
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / f".doctor-{uuid.uuid4().hex}"
            probe.write_text("")
            probe.unlink()
            checks.append(DoctorCheck(label, OK, f"{path.resolve()} is writable"))
        except OSError as e:
            checks.append(
                DoctorCheck(
                    label, PROBLEM, f"{path}: {e.strerror or e}", "choose another folder (results_dir=...)", needed=True
                )
            )
    return checks


def run_checks(gpu: str, algo: str, slurm: bool, results: Path, jobs: Path) -> list[DoctorCheck]:
    return (
        python_and_packages()
        + gpu_checks(gpu, algo)
        + cpu_energy_checks()
        + algorithm_checks(algo)
        + slurm_checks(slurm)
        + writable_checks(results, jobs)
    )


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m harness.doctor", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--gpu",
        default="local",
        type=validate.choice(group_choices("gpu")),
        metavar="|".join(group_choices("gpu")),
        help="the gpu type the run asks for",
    )
    parser.add_argument("--algo", default="torch", type=validate.text, help="the algorithm the run asks for")
    parser.add_argument("--slurm", action="store_true", help="the run is submitted to SLURM")
    # whether they can be written is one of the checks (a row of the table), not a usage error
    parser.add_argument("--results-dir", type=validate.path, default=Path("results"))
    parser.add_argument("--jobs-dir", type=validate.path, default=Path("jobs"))
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    algo = algorithms.canonical_name(args.algo)
    checks = run_checks(args.gpu, algo, args.slurm, args.results_dir, args.jobs_dir)
    table = Table(title="harness doctor")
    for col in ("check", "status", "found", "fix"):
        table.add_column(col)
    colour = {OK: "green", WARNING: "yellow", PROBLEM: "red"}
    for c in checks:
        table.add_row(c.name, f"[{colour[c.status]}]{c.status}[/]", c.found, c.fix if c.status != OK else "")
    Console(width=160).print(table)
    blocking = [c for c in checks if c.status == PROBLEM and c.needed]
    if blocking:
        Console(stderr=True).print(f"{len(blocking)} problem(s) stop this run: {', '.join(c.name for c in blocking)}")
    return 1 if blocking else 0


if __name__ == "__main__":
    sys.exit(main())
