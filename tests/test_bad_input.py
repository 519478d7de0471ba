"""Bad input at every argparse entry point (issue 27): generated from the options each parser declares.

For every option and positional that takes a value, its type (a harness.validate validator) says which bad
values to try: a word, a negative, zero, a fraction or nan for numbers; an unknown value for choices; a
missing path for inputs; a path under a regular file, or of the wrong kind, for outputs; the empty string
for everything. Each case runs the command in this process (``main(argv)``) and must end with exit status
2, one line on stderr that names the option, the value and what is valid, nothing at the --out path and
the results tree byte-identical. An option whose type is none of the validators fails
``test_every_option_is_validated``: a new option cannot escape the table.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import analysis.__main__ as analysis_main
from analysis import bless, plan
from analysis.compare import __main__ as compare_main
from analysis.legacy import importer as legacy
from harness import acceptance, doctor, status, validate
from harness.results import columns
from tests.synthetic import point_row, write_points

LEGACY_CSVS = Path(__file__).parent / "analysis" / "fixtures" / "legacy"


@dataclass(frozen=True)
class EntryPoint:
    """A command: its parser, its main, and argv that parses (``{tree}``, ``{out}``, ``{file}`` filled in)."""

    parser: Callable[[], argparse.ArgumentParser]
    main: Callable[[list[str]], Any]
    valid: dict[str, list[str]]  # subcommand ("" without) -> arguments that parse


ENTRY_POINTS = {
    "harness.status": EntryPoint(status.build_parser, status.main, {"": ["--results", "{tree}"]}),
    "harness.doctor": EntryPoint(doctor.build_parser, doctor.main, {"": ["--results-dir", "{out}"]}),
    "harness.acceptance": EntryPoint(acceptance.build_parser, acceptance.main, {"": ["--out", "{out}"]}),
    "harness.results.columns": EntryPoint(columns.build_parser, columns.main, {"": []}),
    "analysis": EntryPoint(analysis_main.parser, analysis_main.main, {"": ["{tree}", "--out", "{out}"]}),
    "analysis.plan": EntryPoint(
        plan.parser,
        plan.main,
        {
            "make": ["make", "{tree}", "--model", "resnet50", "--size", "224", "--out", "{out}/plan.json"],
            "show": ["show", "{file}"],
            "export": ["export", "{file}", "--ai3", "--out", "{out}/algos.json"],
        },
    ),
    "analysis.bless": EntryPoint(bless.parser, bless.main, {"": ["{tree}", "--out", "{out}/refs.yaml"]}),
    "analysis.compare": EntryPoint(compare_main.parser, compare_main.main, {"": ["{tree}", "--out", "{out}"]}),
    "analysis.legacy": EntryPoint(legacy.parser, legacy.main, {"": [str(LEGACY_CSVS), "--out", "{out}"]}),
}

WORD, NEGATIVE, ZERO, FRACTION, NAN, EMPTY = "many", "-3", "0", "1.5", "nan", ""
UNDER_A_FILE = "{file}/sub"  # a path whose parent is a regular file: never writable, even for root
MISSING = "{tmp}/missing"

# validator -> the bad values every option of that kind must refuse
BAD_VALUES: dict[Any, dict[str, str]] = {
    validate.positive_int: {"word": WORD, "negative": NEGATIVE, "zero": ZERO, "fraction": FRACTION, "empty": EMPTY},
    validate.non_negative_int: {"word": WORD, "negative": NEGATIVE, "fraction": FRACTION, "empty": EMPTY},
    validate.positive_float: {"word": WORD, "negative": NEGATIVE, "zero": ZERO, "nan": NAN, "empty": EMPTY},
    validate.non_negative_float: {"word": WORD, "negative": NEGATIVE, "nan": NAN, "empty": EMPTY},
    validate.text: {"empty": EMPTY, "blank": "  "},
    validate.path: {"empty": EMPTY},
    validate.input_path: {"missing": MISSING, "empty": EMPTY},
    validate.output_folder: {"under a file": UNDER_A_FILE, "a file": "{file}", "empty": EMPTY},
    validate.output_file: {"under a file": UNDER_A_FILE, "a folder": "{tmp}", "empty": EMPTY},
}
CHOICE_BAD = {"unknown": "no-such-choice", "empty": EMPTY}
AUTO_OR_BAD = {"word": WORD, "negative": NEGATIVE, "empty": EMPTY}


def bad_values(action: argparse.Action) -> dict[str, str] | None:
    """The bad values for an action by the kind its type declares; None: not validated."""
    if isinstance(action.type, validate.choice):
        return CHOICE_BAD
    if isinstance(action.type, validate.auto_or):
        return AUTO_OR_BAD
    return BAD_VALUES.get(action.type)


def value_actions(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    """(subcommand, action) for every action that takes a value, subcommands' included."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(name, a) for _, a in value_actions(sub)]
        elif action.nargs != 0 and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            found.append(("", action))
    return found


def name(action: argparse.Action) -> str:
    """How argparse names the action in its errors: its long option, or a positional's metavar."""
    longs = [o for o in action.option_strings if o.startswith("--")]
    return longs[0] if longs else (action.metavar or action.dest)


def cases() -> list[Any]:
    out = []
    for entry, ep in ENTRY_POINTS.items():
        for sub, action in value_actions(ep.parser()):
            for kind, value in (bad_values(action) or {"not validated": WORD}).items():
                out.append(
                    pytest.param(
                        entry,
                        sub,
                        name(action),
                        value,
                        id=f"{entry}:{sub + ' ' if sub else ''}" f"{name(action)}:{kind}",
                    )
                )
    return out


CASES = cases()


def argv_with(entry: str, sub: str, option: str, value: str) -> list[str]:
    """The valid arguments, with ``option`` given ``value`` (a positional: replaced; an option: appended)."""
    args = list(ENTRY_POINTS[entry].valid[sub])
    if option.startswith("--"):
        return args + [f"{option}={value}"]
    first = 1 if sub else 0  # the positional after the subcommand's name
    return args[:first] + [value] + args[first + 1 :]


def tree_hashes(root: Path) -> dict[str, str]:
    """Every file's sha256 and every folder (an empty one a command created counts too)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad-input") / "results"
    write_points(
        root, [point_row(s, 10.0 + s / 100, run=r, at=i) for i, r in enumerate(("r1", "r2")) for s in (224, 256)]
    )
    return root


def run(entry: str, argv: list[str], capsys: pytest.CaptureFixture) -> tuple[Any, str]:
    """The command's exit status (returned or raised) and its stderr."""
    try:
        code = ENTRY_POINTS[entry].main(argv)
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def test_every_option_is_validated():
    unvalidated = [
        f"{entry} {sub} {name(a)}".replace("  ", " ")
        for entry, ep in ENTRY_POINTS.items()
        for sub, a in value_actions(ep.parser())
        if bad_values(a) is None
    ]
    assert unvalidated == [], "give these a harness.validate type"


@pytest.mark.parametrize(("entry", "sub", "option", "value"), CASES)
def test_a_bad_value_is_refused_in_one_line_before_any_work(
    entry: str, sub: str, option: str, value: str, tree: Path, tmp_path: Path, capsys
):
    file = tmp_path / "a-file"
    file.write_text("{}\n")
    out = tmp_path / "out"
    fill = {"tree": str(tree), "out": str(out), "file": str(file), "tmp": str(tmp_path)}
    argv = [a.format(**fill) for a in argv_with(entry, sub, option, value)]
    before = tree_hashes(tree)
    code, err = run(entry, argv, capsys)
    shown = value.format(**fill) or "''"
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and option in err and shown in err and "is not valid" in err, err
    assert not out.exists(), "a refused command wrote to --out"
    assert tree_hashes(tree) == before
    assert file.read_text() == "{}\n"


@pytest.mark.parametrize(("entry", "sub"), [(e, s) for e, ep in ENTRY_POINTS.items() for s in ep.valid])
def test_an_unknown_option_is_refused_in_one_line(entry: str, sub: str, tree: Path, tmp_path: Path, capsys):
    fill = {"tree": str(tree), "out": str(tmp_path / "out"), "file": str(tmp_path), "tmp": str(tmp_path)}
    code, err = run(entry, [a.format(**fill) for a in ENTRY_POINTS[entry].valid[sub]] + ["--no-such-option"], capsys)
    assert code == 2 and err.startswith("error: unrecognized arguments: --no-such-option (see python -m ")
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_the_table_covers_every_entry_point():
    per_entry = {entry: sum(1 for c in CASES if c.values[0] == entry) for entry in ENTRY_POINTS}
    assert all(per_entry[e] > 0 for e in ENTRY_POINTS if e != "harness.results.columns"), per_entry


# Refused after parsing too (values checked against what the tree holds, outputs inside the tree): the tree
# they name must come out byte-identical, and no output appear inside it.
REFUSED_AGAINST_THE_TREE = [
    ("harness.status", ["--results", "{tree}", "--model", "vgg99"]),
    ("harness.status", ["--results", "{tree}", "--stage", "full", "--rerun-failed", "--yes"]),
    ("harness.doctor", ["--results-dir", "{tree}", "--gpu", "a100"]),
    ("harness.acceptance", ["--jobs-dir", "{tree}", "--out", "{tree}/verdicts", "--budget-s", "-1"]),
    ("harness.results.columns", ["{tree}"]),
    ("analysis", ["{tree}", "--out", "{tree}/analysis"]),
    ("analysis", ["{tree}", "--out", "{tmp}/analysis", "--gpu", "v100"]),
    ("analysis", ["{tree}", "--out", "{tmp}/analysis", "--math", "weird"]),
    ("analysis.plan", ["make", "{tree}", "--model", "resnet50", "--size", "999", "--out", "{tree}/plan.json"]),
    ("analysis.plan", ["make", "{tree}", "--model", "vgg16", "--size", "224", "--out", "{tree}/plan.json"]),
    ("analysis.bless", ["{tree}", "--model", "vgg99", "--out", "{tree}/refs.yaml"]),
    ("analysis.bless", ["{tree}", "--select", "run_id=r9", "--out", "{tree}/refs.yaml"]),
    ("analysis.compare", ["{tree}", "--by", "colour", "--out", "{tree}/comparison"]),
    ("analysis.compare", ["{tree}", "--a", "run_id=r9", "--b", "run_id=r1", "--out", "{tmp}/comparison"]),
    ("analysis.legacy", [str(LEGACY_CSVS), "--out", "{tree}"]),
    ("analysis.legacy", [str(LEGACY_CSVS), "--out", "{tree}/stage=quick/legacy"]),
]


@pytest.mark.parametrize(
    ("entry", "args"), REFUSED_AGAINST_THE_TREE, ids=[f"{e}:{' '.join(a[-2:])}" for e, a in REFUSED_AGAINST_THE_TREE]
)
def test_nothing_lost_a_refused_command_leaves_the_results_tree_byte_identical(
    entry: str, args: list[str], tree: Path, tmp_path: Path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # a default output path lands here, never in the repository
    run_json = next(tree.rglob("points-*.parquet")).parent / "run-r1.json"
    run_json.write_text('{"run_id": "r1", "outcome": "done"}\n')
    before = tree_hashes(tree)
    code, err = run(entry, [a.format(tree=tree, tmp=tmp_path) for a in args], capsys)
    assert code == 2, err
    assert err.strip().splitlines()[-1].startswith("error: "), err
    assert tree_hashes(tree) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_readme_example_is_what_a_command_says(tree: Path, tmp_path: Path, capsys):
    example = "error: argument --size: 0 is not valid: give an integer > 0"
    assert f"`{example}`" in (Path(__file__).parent.parent / "docs" / "running.md").read_text()
    code, err = run(
        "analysis.plan",
        ["make", str(tree), "--model", "resnet50", "--size", "0", "--out", str(tmp_path / "plan.json")],
        capsys,
    )
    assert code == 2 and err == f"{example} (see python -m analysis.plan make --help)\n"


@pytest.mark.parametrize("out", ["", "{file}/sub"])
@pytest.mark.parametrize("call", ["analysis.pipeline.run", "analysis.legacy.import_legacy"])
def test_the_python_api_refuses_an_empty_or_unwritable_out_before_reading(
    call: str, out: str, tree: Path, tmp_path: Path, monkeypatch
):
    from analysis import pipeline
    from harness.errors import HarnessError

    monkeypatch.chdir(tmp_path)  # an empty out would be this folder
    file = tmp_path / "a-file"
    file.write_text("{}\n")
    before = tree_hashes(tree)
    with pytest.raises(HarnessError, match=r"^--out .* is not valid: "):
        if call == "analysis.pipeline.run":
            pipeline.run([tree], out.format(file=file))
        else:
            legacy.import_legacy([LEGACY_CSVS], out.format(file=file))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"] and tree_hashes(tree) == before
