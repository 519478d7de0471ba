"""harness.validate from Python: typed errors (ConfigError, a HarnessError) naming the option, the value and
what is valid; converted values; output paths checked without writing anything."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness import validate
from harness.errors import ConfigError, HarnessError


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("false", False), ("True", True), ("FALSE", False), (True, True), (False, False)],
)
def test_booleans_are_true_or_false(value, expected):
    assert validate.boolean(value, "remeasure") is expected


@pytest.mark.parametrize("value", ["no", "yes", "0", "1", "", "off", 0, 1, None])
def test_anything_else_is_not_a_boolean(value):
    with pytest.raises(ConfigError) as e:
        validate.boolean(value, "remeasure")
    assert str(e.value).startswith("remeasure ") and str(e.value).endswith("is not valid: give true or false")


@pytest.mark.parametrize(
    ("check", "value", "expected"),
    [
        (validate.positive_int, "3", 3),
        (validate.positive_int, 3, 3),
        (validate.positive_int, 2.0, 2),
        (validate.non_negative_int, "0", 0),
        (validate.positive_float, "0.5", 0.5),
        (validate.positive_float, 2, 2.0),
        (validate.non_negative_float, "0", 0.0),
        (validate.non_negative_float, "1e-3", 0.001),
    ],
)
def test_numbers_convert(check, value, expected):
    result = check(value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("check", "value", "valid"),
    [
        (validate.positive_int, "0", "give an integer > 0"),
        (validate.positive_int, "-1", "give an integer > 0"),
        (validate.positive_int, "1.5", "give an integer > 0"),
        (validate.positive_int, 1.5, "give an integer > 0"),
        (validate.positive_int, True, "give an integer > 0"),
        (validate.positive_int, "ten", "give an integer > 0"),
        (validate.non_negative_int, "-1", "give an integer >= 0"),
        (validate.positive_float, "0", "give a number > 0"),
        (validate.positive_float, "inf", "give a number > 0"),
        (validate.non_negative_float, "-0.1", "give a number >= 0"),
        (validate.non_negative_float, float("nan"), "give a number >= 0"),
    ],
)
def test_numbers_out_of_range_or_not_numbers_are_refused(check, value, valid):
    with pytest.raises(HarnessError) as e:
        check(value, "--threads")
    assert str(e.value) == f"--threads {value} is not valid: {valid}"


def test_choices_list_the_valid_ones():
    dtype = validate.choice(("float32", "float16"))
    assert dtype("float16") == "float16"
    with pytest.raises(ConfigError, match=r"^dtype float64 is not valid: valid choices: float32, float16$"):
        dtype("float64", "dtype")


def test_auto_or_a_number():
    floor = validate.auto_or(validate.non_negative_float)
    assert floor("auto") == "auto" and floor("0.02") == 0.02
    with pytest.raises(ConfigError, match=r"^--noise-floor lots is not valid: give auto or a number >= 0$"):
        floor("lots", "--noise-floor")


@pytest.mark.parametrize("check", [validate.path, validate.input_path, validate.output_folder, validate.output_file])
def test_an_empty_path_is_never_the_current_folder(check):
    with pytest.raises(ConfigError, match=r"^--out '' is not valid: give a path \(an empty one would be the current"):
        check("", "--out")


def test_input_paths_exist(tmp_path: Path):
    assert validate.input_path(str(tmp_path)) == tmp_path
    with pytest.raises(ConfigError, match=r"missing is not valid: it does not exist$"):
        validate.input_path(str(tmp_path / "missing"), "--plan")


def test_output_folders_are_checked_without_being_created(tmp_path: Path):
    deep = tmp_path / "a" / "b"
    assert validate.output_folder(str(deep)) == deep and not (tmp_path / "a").exists()
    file = tmp_path / "f"
    file.write_text("x")
    with pytest.raises(
        ConfigError,
        match=rf"^--out {file}/sub is not valid: {file} is a file, not a folder; give a " "writable folder$",
    ):
        validate.output_folder(str(file / "sub"), "--out")
    with pytest.raises(ConfigError, match="it is a file; give a folder"):
        validate.output_folder(str(file))
    assert file.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_output_files_are_files_in_a_writable_folder(tmp_path: Path):
    assert validate.output_file(str(tmp_path / "new" / "plan.json")) == tmp_path / "new" / "plan.json"
    with pytest.raises(ConfigError, match="it is a folder; give a file name"):
        validate.output_file(str(tmp_path))
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder; give a file in a writable folder"):
        validate.output_file(str(tmp_path / "f" / "plan.json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_as_argparse_types_the_error_is_one_line_naming_the_option(capsys):
    from harness.cli import ArgumentParser, command

    p = ArgumentParser(prog="prog")
    p.add_argument("--threads", type=validate.positive_int)
    assert p.parse_args(["--threads", "2"]).threads == 2
    assert command(lambda: p.parse_args(["--threads", "0"]) and 0)() == 2
    err = capsys.readouterr().err
    assert err == "error: argument --threads: 0 is not valid: give an integer > 0 (see prog --help)\n"
    assert issubclass(validate.InvalidValue, argparse.ArgumentTypeError)
