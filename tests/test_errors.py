"""One error root and one exit policy: every user-facing error is a HarnessError of a kind that says what to do,
and every command refuses bad input with one line on stderr, ``error: ...``, and exit status 2."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import analysis
import harness
from analysis.errors import AnalysisError, AnalysisOutputError, ResultsInputError, SchemaVersionError
from analysis.legacy.importer import LegacyError, NothingImported
from harness.algorithms.cudnn import CudnnUnavailable
from harness.algorithms.plan import PlanError, PlanMismatch
from harness.cli import ArgumentParser, command, error_line
from harness.errors import (
    ConfigError,
    DeviceMismatchError,
    HarnessError,
    InputFileError,
    MissingEnvironmentError,
    OutputError,
    StoreError,
    UsageError,
)
from harness.references import ReferencesError
from harness.run.sanity_gate import StageGateError
from tests.conftest import run_cli

# Exceptions of the code that never reach a user as such: each is caught and recorded, or marks a bug.
INTERNAL = {
    "harness.errors.Cancelled": "a BaseException on SIGTERM: the job stops and records that it was cancelled",
    "harness.algorithms.cudnn_library.CudnnError": (
        "a point's outcome (status error/unsupported in its row), not a refusal"
    ),
    "harness.algorithms.cudnn_library.CudnnNotSupported": "a layer's outcome: recorded as unsupported or a fallback",
    "harness.algorithms.cudnn_library.CudnnNotInitialized": "a point's outcome, as CudnnError",
    "harness.algorithms.cudnn_library.WorkspaceOutOfMemory": "a layer's outcome, as CudnnNotSupported",
    "harness.algorithms.swap.UnsupportedLayer": "a point's outcome: a layer with no runnable plan was called",
    "harness.measure.graphs.GraphResetError": (
        "a job's stop after a failed capture left the device unverified: logged, its points kept, a rerun resumes"
    ),
    "harness.config.keys.UnknownKey": "a developer's omission: a config key missing from the registry",
    "analysis.legacy.rows.BadRow": "a skipped line of an old CSV, listed in the import report",
    "harness.measure.source.GitUnavailable": "no git here: the commit is unknown (git_commit null) and logged",
    "analysis.tree.gather._Wider": "a signal within the layers' read, caught there: it reads again at full width",
}


def _exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in the harness and analysis packages (their ``__main__`` modules aside:
    importing one runs the command)."""
    found = {}
    for package in (harness, analysis):
        for module_info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if module_info.name.endswith("__main__"):
                continue
            module = importlib.import_module(module_info.name)
            for obj in vars(module).values():
                if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def test_every_exception_class_is_a_harness_error_or_known_to_be_internal():
    classes = _exception_classes()
    assert set(INTERNAL) <= set(classes), "a class listed as internal no longer exists: update INTERNAL"
    outside = sorted(
        name for name, cls in classes.items() if not issubclass(cls, HarnessError) and name not in INTERNAL
    )
    assert outside == [], "user-facing errors must be HarnessErrors (harness/errors.py)"
    reached = {
        "harness.algorithms.plan.PlanError",
        "harness.references.format.ReferencesError",
        "analysis.legacy.records.LegacyError",
        "analysis.errors.AnalysisError",
    }
    assert reached <= set(classes)  # the walk reaches nested modules


@pytest.mark.parametrize(
    ("cls", "kind"),
    [
        (ConfigError, HarnessError),
        (UsageError, ConfigError),
        (StageGateError, ConfigError),
        (InputFileError, HarnessError),
        (PlanError, InputFileError),
        (PlanMismatch, PlanError),
        (ReferencesError, InputFileError),
        (ResultsInputError, InputFileError),
        (SchemaVersionError, ResultsInputError),
        (NothingImported, InputFileError),
        (OutputError, HarnessError),
        (StoreError, OutputError),
        (LegacyError, OutputError),
        (AnalysisOutputError, OutputError),
        (MissingEnvironmentError, HarnessError),
        (DeviceMismatchError, MissingEnvironmentError),
        (CudnnUnavailable, MissingEnvironmentError),
        (AnalysisError, HarnessError),
        (ResultsInputError, AnalysisError),
        (SchemaVersionError, AnalysisError),
        (AnalysisOutputError, AnalysisError),
    ],
    ids=lambda v: v.__name__,
)
def test_each_error_is_of_the_kind_that_says_what_to_do(cls: type, kind: type):
    assert issubclass(cls, kind) and issubclass(cls, HarnessError)


def test_the_kinds_are_distinct():
    kinds = (ConfigError, InputFileError, OutputError, MissingEnvironmentError)
    assert not any(issubclass(a, b) for a in kinds for b in kinds if a is not b)


def test_error_line_is_one_line():
    assert error_line(ConfigError("x=1 is not valid")) == "error: x=1 is not valid"
    assert error_line(ConfigError("first\n  second\n\n")) == "error: first; second"
    assert error_line(OutputError()) == "error: OutputError"


def test_command_turns_a_harness_error_into_one_line_and_2(capsys: pytest.CaptureFixture):
    @command
    def main(argv: list[str] | None = None) -> int:
        if argv:
            raise InputFileError(f"plan {argv[0]}: no such file")
        return 1  # a check that failed keeps its own code

    assert main([]) == 1 and capsys.readouterr().err == ""
    assert main(["p.json"]) == 2
    assert capsys.readouterr().err == "error: plan p.json: no such file\n"


def test_command_leaves_bugs_their_traceback():
    @command
    def main() -> int:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        main()


def test_argument_parser_raises_a_usage_error_naming_the_option_and_the_valid_values(capsys: pytest.CaptureFixture):
    p = ArgumentParser(prog="python -m tool")
    p.add_argument("--gpu", choices=["h100", "l40s"])
    with pytest.raises(
        UsageError,
        match=r"^argument --gpu: invalid choice: 'a100' \(choose from "
        r"'h100', 'l40s'\) \(see python -m tool --help\)$",
    ):
        p.parse_args(["--gpu", "a100"])
    with pytest.raises(SystemExit) as e:  # --help is not an error
        p.parse_args(["--help"])
    assert e.value.code == 0 and "--gpu" in capsys.readouterr().out


# One bad input per entry point (tests of every option: elsewhere). Paths are relative to the command's folder,
# a fresh one: "nowhere" does not exist there.
REFUSALS = [
    ("harness", ["batch_size=0"], "batch_size=0 is not valid"),
    ("harness", ["-m", "batch_size=0,1"], "batch_size=0 is not valid"),
    ("harness", ["stage=nope"], "stage=nope is not valid; valid choices: full, quick, sanity"),
    ("harness", ["seed=${nothing}"], "the config does not resolve: Interpolation key 'nothing' not found"),
    ("harness.status", ["--results", "nowhere", "--jobs", "nowhere"], "nothing has run here"),
    ("harness.doctor", ["--algo", "magic"], "unknown algo 'magic'"),
    ("harness.acceptance", ["--budget-s", "soon"], "argument --budget-s: soon is not valid: give a number > 0"),
    ("harness.results.columns", ["--markdown"], "unrecognized arguments: --markdown"),
    ("analysis", ["nowhere", "--out", "out"], "argument RESULTS: nowhere is not valid: it does not exist"),
    ("analysis.plan", ["show", "nowhere.json"], "argument plan: nowhere.json is not valid: it does not exist"),
    ("analysis.bless", ["nowhere", "--out", "out.yaml"], "argument TREE: nowhere is not valid: it does not exist"),
    (
        "analysis.compare",
        ["nowhere", "--by", "gpu", "--out", "out"],
        "argument TREE: nowhere is not valid: it does not exist",
    ),
    ("analysis.legacy", ["nowhere", "--out", "out"], "argument PATH: nowhere is not valid: it does not exist"),
]


@pytest.mark.parametrize(("module", "args", "says"), REFUSALS, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_every_entry_point_refuses_bad_input_in_one_line_with_status_2(
    tmp_path: Path, module: str, args: list[str], says: str
):
    proc = run_cli(*args, cwd=tmp_path, module=module)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert says in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.yaml").exists()


def test_every_entry_point_is_tested():
    entry_points = {
        "harness",
        "harness.status",
        "harness.doctor",
        "harness.acceptance",
        "harness.results.columns",
        "analysis",
        "analysis.plan",
        "analysis.bless",
        "analysis.compare",
        "analysis.legacy",
    }
    assert {module for module, _, _ in REFUSALS} == entry_points
