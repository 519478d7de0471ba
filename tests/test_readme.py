"""README.md and the docs/ pages stay true: their shell commands run (with tiny overrides), their Python snippets
work, and every command line is run by some test or explicitly marked as not run here (tests/docs_pages.py)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from tests import docs_pages
from tests.conftest import REPO, has_cuda_device_named, run_cli

# README.md, then the docs pages in nav order (not python-api.md: tests/test_python_api.py runs its blocks)
README = docs_pages.combined_text()
TINY = [
    "stage.sizes=[64]",
    "stage.warmup_iters=1",
    "stage.min_iters=3",
    "stage.max_iters=3",
    "stage.layer_iters=1",
]


def _tiny(args: list[str]) -> list[str]:
    """TINY for a README command: where the command gives stage.sizes as a range, TINY's one size is given
    as a range too (Hydra cannot merge a list into a mapping given earlier on the same command line)."""
    if any(a.startswith("stage.sizes={") for a in args):
        return ["stage.sizes={start:64,stop:64,num:1}", *TINY[1:]]
    return TINY


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _readme_blocks(lang: str) -> list[str]:
    """README.md's own blocks (its first two bash blocks are the set-up and the test command)."""
    return re.findall(rf"```{lang}\n(.*?)```", docs_pages.text("README.md"), flags=re.S)


def _single_lines() -> list[str]:
    """Each bash line that runs on its own (not in a block whose lines run as one sequence), in order: a command
    shown on two pages (its comment aside) runs once, where it first appears."""
    sequences = (_comparison_block(), _plan_block(), _own_model_block())
    lines = [line for block in _blocks("bash") if block not in sequences for line in block.splitlines()]
    first: dict[str, str] = {}
    for line in lines:
        first.setdefault(_command_key(line), line)
    return list(first.values())


def _command_key(line: str) -> str:
    """A line's command, its comment and spacing aside."""
    return " ".join(line.partition("#")[0].split()) or line


def _comparison_block() -> str:
    """The README block that compares, blesses and checks against references: its lines depend on each other."""
    (block,) = [b for b in _blocks("bash") if "python -m analysis.bless" in b]
    return block


def _plan_block() -> str:
    """The README block that makes, runs and exports a per-layer plan: its lines depend on each other."""
    (block,) = [b for b in _blocks("bash") if "python -m analysis.plan" in b]
    return block


def _own_model_block() -> str:
    """The README block of "Your own model": its lines make model files and then measure them, in order."""
    (block,) = [b for b in _blocks("bash") if "model.path=" in b]
    return block


def _harness_commands() -> list[tuple[str, list[str], str]]:
    """(module, arguments, the line's comment: whether the README says it is refused here, and how) of each
    `python -m harness...` line."""
    out = []
    for line in _single_lines():  # the sequences run as one each: test_readme_comparison/plan/own_model_commands
        command, _, comment = line.partition("#")
        match = re.search(r"python -m (harness(?:\.\w+)?)(.*)", command)
        if match:
            out.append((match.group(1), shlex.split(match.group(2)), comment.strip()))
    return out


def test_setup_command_installs_pinned_torch_and_runs_the_default_job():
    setup = _readme_blocks("bash")[0].strip()
    assert "pip install torch==2.14.1 torchvision==0.29.1 -e '.[test]'" in setup
    assert setup.endswith("&& python -m harness")


def test_ci_runs_the_readme_test_command():
    test_command = _readme_blocks("bash")[1].strip()
    assert test_command == "python -m pytest"
    assert test_command in (REPO / ".ci" / "run").read_text()


def _gpu_this_machine_has(args: list[str]) -> str | None:
    """The gpu=<type> of a command, if this machine has that GPU (then the command is not refused here)."""
    for arg in args:
        if arg.startswith("gpu="):
            nvml_name = OmegaConf.load(REPO / "conf" / "gpu" / f"{arg[4:]}.yaml").get("nvml_name")
            if nvml_name and has_cuda_device_named(nvml_name):
                return nvml_name
    return None


def _command_id(v: str | list[str]) -> str:
    if isinstance(v, list):
        return " ".join(v)
    return v if v.startswith("harness") else "refused" if "refused" in v else ""


@pytest.mark.parametrize(("module", "args", "comment"), _harness_commands(), ids=_command_id)
def test_readme_harness_command(tmp_path: Path, module: str, args: list[str], comment: str):
    refused = "refused" in comment
    runs = module == "harness" and "--cfg" not in args and "--help" not in args
    if refused and (gpu := _gpu_this_machine_has(args)):
        pytest.skip(f"README says this machine has no {gpu}, but this one does")
    if module == "harness.acceptance" and torch.cuda.is_available():
        pytest.skip("on a GPU the acceptance command runs for real in tests/test_acceptance.py (gpu-marked)")
    proc = run_cli(*args, *(_tiny(args) if runs else []), cwd=tmp_path, module=module)
    if refused:  # README, Errors: one line on stderr and exit status 2; where the comment quotes it, those words
        assert proc.returncode == 2 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
        quoted = comment.partition("refused: ")[2].removesuffix("...").strip()
        assert not quoted.startswith("error:") or proc.stderr.startswith(quoted), (quoted, proc.stderr)
        return
    assert proc.returncode == 0, proc.stderr
    if "dry_run=true" in args:  # docs/running.md, Dry run: a plan printed, nothing measured
        assert "nothing is submitted or measured" in proc.stdout and not (tmp_path / "results").exists()
    elif runs:
        assert list((tmp_path / "results").rglob("points-*.parquet"))


def _run_python(snippet: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", snippet],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": str(Path(sys.executable).parent)},
    )


def test_readme_python_snippets(tmp_path: Path):
    snippets = [s for s in _blocks("python") if s != _plan_snippet()]  # that one: test_readme_plan_commands
    reading = [s for s in snippets if '"results"' in s]
    assert len(reading) == 1 and len(snippets) == 2
    assert run_cli(*TINY, "trace=true", cwd=tmp_path).returncode == 0  # a trace file beside the tables
    assert list((tmp_path / "results").rglob("trace-*.json"))
    proc = _run_python(reading[0], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "resnet18" in proc.stdout and "conv1" in proc.stdout
    (profiling,) = [s for s in snippets if s not in reading]
    proc = _run_python(profiling, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "('conv1', (1, 3, 64, 64))" in proc.stdout


def _analysis_commands() -> list[list[str]]:
    """The arguments of each `python -m analysis...` line, module first."""
    out = []
    for line in _single_lines():
        match = re.search(r"python -m (analysis(?:\.\w+)?)(.*)", line.partition("#")[0])
        if match:
            out.append([match.group(1), *shlex.split(match.group(2))])
    return list({tuple(c): c for c in out}.values())


# Added to each `python -m analysis` line that analyses (README's own flags; the lines run as written, plus these):
# one OpenMP thread for the predictor where a line asks for it (steadier when another process holds a core), and
# only the last line, the one that reads the new and the imported trees together, draws the figures (on both
# kinds of rows); the others make tables and the report, which is what differs between them.
ANALYSIS_ALL = ["--threads", "1"]
ANALYSIS_QUICK = [*ANALYSIS_ALL, "--no-plots"]


def test_readme_analysis_commands(tmp_path: Path):
    """Each `python -m analysis...` line, in order, in a folder holding a small results tree (stage quick on
    h100 and l40s) and a tarball of real old-system CSVs under the README's name."""
    import tarfile

    from tests.synthetic import Synthetic, default_models, generate

    commands = _analysis_commands()
    assert [c[0] for c in commands].count("analysis.legacy") == 1 and len(commands) >= 6
    generate(
        tmp_path / "results",
        Synthetic(
            models=default_models(n_models=2, n_layers=4),
            gpus=("h100", "l40s"),
            sizes=(32, 48, 64),
            power_w={"h100": 300.0},
        ),
    )
    fixtures = REPO / "tests" / "analysis" / "fixtures" / "legacy"
    with tarfile.open(tmp_path / "ai3-performance-prediction-results.tar.gz", "w:gz") as tar:
        for f in sorted(fixtures.glob("*.csv")):
            tar.add(f, arcname=f"results/{f.name}")
    *_, last = commands
    assert last[0] == "analysis" and {"results", "results-legacy"} <= set(last)
    for module, *args in commands:
        extra = (
            []
            if module != "analysis" or "--help" in args
            else ANALYSIS_ALL
            if [module, *args] == last
            else ANALYSIS_QUICK
        )
        proc = run_cli(
            *args, *extra, cwd=tmp_path, module=module, env={"MPLBACKEND": "Agg"}, timeout=600
        )  # catches a hang: each takes seconds, the last a minute on a busy machine
        assert proc.returncode == 0, f"python -m {module} {' '.join(args + extra)}: {proc.stderr[-2000:]}"
        if "--help" not in args and module == "analysis":
            out = args[args.index("--out") + 1] if "--out" in args else "results-analysis"
            assert (tmp_path / out / "report.md").is_file()
    both = (tmp_path / "all-analysis" / "report.md").read_text()
    assert "stages legacy, quick" in both
    assert list((tmp_path / "all-analysis" / "figures").glob("*.png"))
    assert list((tmp_path / "results-analysis" / "predictor").glob("*.pkl"))  # the --predictor line
    assert not (tmp_path / "all-analysis" / "predictor").exists()  # opt-in


def test_readme_comparison_commands(tmp_path: Path):
    """The compare / bless / references block, line by line in one folder: harness lines with TINY; compare
    may find a change on this noisy machine (exit 1) but must run (not 2) unless the README says it is
    refused; the legacy comparison gets imported rows (the fixtures, through analysis.legacy) and new rows of
    the same points."""
    from analysis.legacy.importer import main as import_legacy
    from tests.synthetic import write_points

    fixtures = REPO / "tests" / "analysis" / "fixtures" / "legacy"
    assert import_legacy([str(fixtures), "--out", str(tmp_path / "results-legacy")]) == 0
    write_points(
        tmp_path / "results",
        [
            {
                "run_id": "new",
                "stage": "quick",
                "gpu": "h100",
                "model": "vgg16",
                "algo": "gemm",
                "input_size": size,
                "batch_size": 1,
                "dtype": "float32",
                "status": "ok",
                "backend": "cudnn",
                "math_type": "fma",
                "n": 200,
                "p50_ms": 3.0,
                "ci95_low_ms": 2.99,
                "ci95_high_ms": 3.01,
                "std_ms": 0.02,
            }
            for size in (224, 226, 229)
        ],
    )
    for line in _comparison_block().splitlines():
        command, _, comment = line.partition("#")
        module, *args = shlex.split(command.split("python -m ", 1)[1])
        extra = _tiny(args) if module == "harness" else []
        proc = run_cli(*args, *extra, cwd=tmp_path, module=module)
        if "refused" in comment:
            assert proc.returncode == 2 and proc.stderr.startswith("error:"), (line, proc.stderr)
        elif module == "analysis.compare":
            assert proc.returncode in (0, 1), (line, proc.stderr)
            out = args[args.index("--out") + 1] if "--out" in args else "comparison"
            assert (tmp_path / out / "comparison.md").is_file() and (tmp_path / out / "points.parquet").is_file()
        else:
            assert proc.returncode == 0, (line, proc.stderr)
    from harness.results import read

    after = read(tmp_path / "after")
    assert after["run_id"].nunique() == 2 and after["reference_status"].notna().sum() == len(after) // 2
    assert "noise floor" in (tmp_path / "rerun" / "comparison.md").read_text().lower()
    legacy = pd.read_parquet(tmp_path / "legacy-vs-new" / "points.parquet")
    assert legacy["verdict"].eq("faster").all() and legacy["caveats"].str.contains("timing_includes_host_copies").all()


def _plan_snippet() -> str:
    (snippet,) = [s for s in _blocks("python") if "plan.read" in s]
    return snippet


def test_readme_plan_commands(tmp_path: Path):
    """The per-layer plan block, line by line in one folder (harness lines with TINY but the block's own size:
    the plan is made at it), then the Python snippet: a real sweep of two algorithms plus torch, a plan made
    from it, run end to end (every layer row says what ran), exported, and the report's projected vs measured."""
    for line in _plan_block().splitlines():
        module, *args = shlex.split(line.partition("#")[0].split("python -m ", 1)[1])
        extra = TINY[1:] if module == "harness" else []
        proc = run_cli(*args, *extra, cwd=tmp_path, module=module, env={"MPLBACKEND": "Agg"}, timeout=600)
        assert proc.returncode == 0, (line, proc.stderr[-3000:])
    from harness.algorithms import plan as plans
    from harness.results import dataset

    plan = plans.read(tmp_path / "plan.json")
    assert set(plan.algorithms()) <= {"gemm", "winograd"} and plan.baseline == "gemm"
    layers = dataset(tmp_path / "results", "layers").to_table().to_pandas()
    mixed = layers[layers["algo"] == "per_layer"]
    assert len(mixed) == len(plan.layers) and mixed["algo_used"].notna().all()
    assert list(mixed.sort_values("layer_index")["algo_used"]) == [x.algo for x in plan.layers]
    ai3 = json.loads((tmp_path / "ai3-algos.json").read_text())
    assert len(ai3) == len(plan.layers) == 20 and set(ai3) <= {"gemm", "winograd"}
    assert len(pd.read_csv(tmp_path / "plan.csv")) == 20
    report = (tmp_path / "plan-analysis" / "report.md").read_text()
    assert "Per-layer plans, measured" in report and plan.digest() in report
    projection = pd.read_csv(tmp_path / "plan-analysis" / "tables" / "plan_projection.csv")
    assert len(projection) == 1 and projection["projected_ms"].notna().all()
    assert projection["measured_over_projected"].notna().all()
    proc = _run_python(_plan_snippet(), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "'layer1.0.conv1': " in proc.stdout


def test_readme_own_model_commands(tmp_path: Path):
    """The "Your own model" block, line by line in one folder holding the README's mynets.py: the python -c
    lines save the models, the harness lines (with TINY) measure them, or are refused where the README says
    so. The ONNX lines need the onnx extra and are skipped without it."""
    import importlib.util

    has_onnx = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnx2torch"))
    (code,) = re.findall(r"where `mynets.py`.*?```py\n(.*?)```", README, flags=re.S)
    (tmp_path / "mynets.py").write_text(code)
    env = {"PYTHONPATH": str(REPO), "PATH": str(Path(sys.executable).parent), "HYDRA_FULL_ERROR": "0"}
    ran = []
    for line in _own_model_block().splitlines():
        command, _, comment = line.partition("#")
        if "onnx" in command and not has_onnx:
            continue
        args = shlex.split(command)
        assert args[:2] in (["python", "-c"], ["python", "-m"]), line
        extra = _tiny(args) if args[2] == "harness" else []
        if args[1] == "-m":
            proc = run_cli(*args[3:], *extra, cwd=tmp_path, module=args[2])
        else:
            proc = subprocess.run(
                [sys.executable, *args[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env
            )
        if "refused" in comment:
            assert proc.returncode == 2 and proc.stderr.startswith("error:"), (line, proc.stderr)
        else:
            assert proc.returncode == 0, (line, proc.stderr[-2000:])
        ran.append(line)
    from harness.results import read

    points = read(tmp_path / "results")
    assert (points["status"] == "ok").all(), points[["model", "algo", "status", "error"]]
    sources = {"state_dict", "module", "export", "torchscript", "factory"} | ({"onnx"} if has_onnx else set())
    assert set(points["model_source"]) == sources
    assert set(points["model"]) >= {"weights", "mynet", "mynet64", "scripted", "tiny_cnn"}


def _is_run_here(line: str) -> bool:
    """Whether a bash line of README.md or a docs page is run by a test in this file."""
    sequences = (_comparison_block(), _plan_block(), _own_model_block())
    setup_and_tests = _readme_blocks("bash")[:2]
    if any(line in block.splitlines() for block in (*sequences, *setup_and_tests)):
        return True  # the sequences, line by line; the set-up and test commands, checked as text
    command = line.partition("#")[0]
    runs = re.search(r"python -m (harness|analysis)(\.\w+)*( |$)", command)
    run_once = {_command_key(single) for single in _single_lines()}
    return bool(runs) and _command_key(line) in run_once  # test_readme_harness_command, test_readme_analysis_commands


def test_every_shell_command_in_the_docs_is_run_or_marked_not_run():
    """Every command line of a shell block in README.md and docs/*.md is run by a test (a `bash` block), or the
    block says it is not run here (`sh`: SLURM submissions, GPU-only or container commands); no other shell
    fence, and no command in an untagged block."""
    not_run_here = []
    for block in docs_pages.blocks():
        if block.lang == docs_pages.SHELL_RUN and block.page in docs_pages.RUN_ELSEWHERE:
            runner = REPO / docs_pages.RUN_ELSEWHERE[block.page]
            assert block.page in runner.read_text(), (block.page, runner)
        elif block.lang == docs_pages.SHELL_RUN:
            not_run_here += [(block.page, line) for line in block.commands() if not _is_run_here(line)]
        else:
            assert block.lang not in ("shell", "console", "zsh", "bash-session"), (block.page, block.lang)
            if block.lang == "":
                assert not any(re.match(r"\s*(\$ |python |pip |sbatch )", line) for line in block.commands()), block
    assert (
        not not_run_here
    ), f"bash lines no test runs (run them in tests/test_readme.py, or fence as sh): {not_run_here}"


def test_every_docs_page_is_in_the_site_nav():
    """mkdocs.yml's nav lists every page under docs/ (but docs/validation/ and docs/changelog.d/, kept out of
    it by not_in_nav), each once, and only pages that exist."""
    nav = docs_pages.nav_pages()
    assert len(nav) == len(set(nav))
    assert sorted(nav) == docs_pages.doc_pages()
    assert nav[0] == "index.md"


def test_readme_is_short_and_says_where_sweeps_and_results_are_on_its_first_screen():
    """A newcomer finds the SLURM sweep and where the results go in the first ~50 lines; README stays short."""
    readme = docs_pages.text("README.md").splitlines()
    assert len(readme) < 200
    first_screen = "\n".join(readme[:50])
    assert "python -m harness -m" in first_screen and "gpu=" in first_screen
    assert "results/stage=<stage>/gpu=<gpu>/model=<model>/algo=<algo>/" in first_screen
