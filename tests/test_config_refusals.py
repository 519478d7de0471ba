"""Bad values of `python -m harness`'s config, refused at the validation step in one line naming the key
(issue 27): cases generated from the registry of keys (harness.config.keys), a fuzz of the override grammar,
model keywords a model does not take, and settings that cannot apply on this device, for every algorithm.

Composition and validation only, in-process: nothing is measured.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import algorithms
from harness.config import keys
from harness.config.compose import compose_config
from harness.config.keys import Key, Role
from harness.config.spec import run_spec_from_dict
from harness.errors import ConfigError, HarnessError
from tests.helpers import compose_configs, make_spec

DEFAULT = compose_configs([[]])[0]


def _path_of(key: Key) -> str:
    """A concrete dotted path of ``key`` (under an open mapping: a new name in it)."""
    return key.name[:-2] + ".harness_test" if key.name.endswith(".*") else key.name


def _exists(path: str) -> bool:
    node: Any = DEFAULT
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _override(path: str, value: str) -> list[str]:
    """The overrides that set ``path`` to ``value`` (Hydra's syntax); a mapping that is null by default (gpu.spec
    of gpu=local) is taken from a GPU type that has one."""
    extra = ["gpu=h100"] if path.startswith(("gpu.spec.", "gpu.slurm.")) else []
    return [*extra, f"{path}={value}" if _exists(path) else f"+{path}={value}"]


def _bad_values(key: Key) -> list[str]:
    """Values the registry's declaration of ``key`` rules out, as typed on the command line."""
    if key.type in ("bool", "bool | auto"):
        bad = ["maybe", "2"]
    elif key.choices is not None:
        bad = ["not_a_choice", "3"]
    else:
        bad = {
            "int": ["abc", "1.5", "[1]"],
            "float": ["abc", "[1]"],
            "mapping of float": ["abc"],
            "str": ["3", "[a]"],
            "path": ["''", "3"],
            "positive int | auto": ["many", "0"],
            "int | list[int]": ["abc", "[a]"],
        }[key.type]
    return bad if key.nullable else [*bad, "null"]


def _registry_cases() -> list[Any]:
    cases = []
    for key in keys.all_keys():
        if not keys.checkable(key):
            continue
        path = _path_of(key)
        cases += [pytest.param(path, v, id=f"{path}={v}") for v in _bad_values(key)]
    return cases


REGISTRY_CASES = _registry_cases()


def _refused_in_one_line(overrides: list[str], key: str) -> str:
    with pytest.raises(ConfigError) as e:
        run_spec_from_dict(compose_config(["device=cpu", *overrides]))
    message = str(e.value)
    assert "\n" not in message and key in message, message
    return message


@pytest.mark.parametrize(("path", "value"), REGISTRY_CASES)
def test_every_declared_type_and_choice_refuses_a_bad_value(path: str, value: str):
    _refused_in_one_line(_override(path, value), path)


GROUP_KEYS = [k.name for k in keys.KEYS if k.type.startswith("config group") and not keys.checkable(k)]


@pytest.mark.parametrize("path", GROUP_KEYS)
def test_a_config_group_key_refuses_an_unknown_option(path: str):
    """Their options are the files in conf/<group>/ (and the algorithms' aliases): the border checks them."""
    message = _refused_in_one_line([f"{path}=nope"], "'nope'")
    assert "valid choices" in message and path.split(".")[0] in message


def test_the_registry_knows_the_launchers():
    from harness.launch.submit import LAUNCHERS

    assert keys.lookup("launcher.name").choices == LAUNCHERS


def test_the_generated_table_covers_every_checkable_key():
    checkable = [k for k in keys.KEYS if keys.checkable(k)]
    assert len(checkable) >= 30 and {c.values[0] for c in REGISTRY_CASES} == {_path_of(k) for k in checkable}


def _misspelled(key: Key) -> str:
    return key.name[:-2] + "x.harness_test" if key.name.endswith(".*") else key.name + "_x"


@pytest.mark.parametrize("key", [k for k in keys.KEYS if not k.name.endswith(".*")], ids=lambda k: k.name)
def test_a_misspelled_key_is_refused_with_the_closest_valid_one(key: Key):
    message = _refused_in_one_line(_override(_misspelled(key), "1")[-1:], _misspelled(key))
    assert f"did you mean {key.name}?" in message


@pytest.mark.parametrize(
    "override", ["+gpu.slurm.reservation=r1", "+model.kwargs.num_classes=10", "+tolerance.tf16=0.1"]
)
def test_keys_under_an_open_mapping_stay_open(override: str):
    run_spec_from_dict(compose_config(["device=cpu", override]))


def test_a_plugin_declares_its_keys(monkeypatch: pytest.MonkeyPatch):
    overrides = ["device=cpu", "+myplugin.level=3"]
    with pytest.raises(ConfigError, match="unknown key 'myplugin.level'"):
        run_spec_from_dict(compose_config(overrides))
    monkeypatch.setattr(keys, "_DECLARED", [])
    keys.declare(Key("myplugin.*", "mapping", Role.NEUTRAL, "a user's plugin's settings"))
    run_spec_from_dict(compose_config(overrides))
    with pytest.raises(ValueError, match="already declared"):
        keys.declare(Key("seed", "int", Role.HASHED, "twice"))


def test_the_launchers_repeat_is_accepted_in_a_task_config(tmp_path: Path):
    config = compose_config(["device=cpu", "repeats=2", f"results_dir={tmp_path}"]) | {"repeat": 1}
    assert run_spec_from_dict(config).repeat == 1


# -- the override grammar, fuzzed ---------------------------------------------------------------------------

PATHS = sorted({_path_of(k) for k in keys.KEYS})
_WORD = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=8)
_RAW = st.text(alphabet=string.ascii_letters + string.digits + "_.,:=[]{}$'\" -+", max_size=12)


@st.composite
def _near_miss(draw: st.DrawFn) -> str:
    path = draw(st.sampled_from(PATHS))
    i = draw(st.integers(0, len(path) - 1))
    return path[:i] + draw(st.sampled_from(["", "x", "_", "."])) + path[i + 1 :]


def _as_override_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(_as_override_value(v) for v in value) + "]"
    return str(value)


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    _WORD,
    st.lists(st.integers(-5, 600), max_size=3),
    _RAW,
).map(_as_override_value)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.one_of(st.sampled_from(PATHS), _near_miss()), value=_VALUES, add=st.sampled_from(["", "+", "++"]))
def test_any_override_validates_or_is_refused_in_one_line(path: str, value: str, add: str):
    try:
        run_spec_from_dict(compose_config(["device=cpu", f"{add}{path}={value}"]))
    except HarnessError as e:
        assert "\n" not in str(e) and str(e), str(e)


# -- model keywords ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "taken"), [("resnet18", "zero_init_residual"), ("vgg16", "dropout"), ("mobilenet_v2", "width_mult")]
)
def test_a_keyword_the_model_does_not_take_is_refused_naming_those_it_takes(tmp_path: Path, model: str, taken: str):
    with pytest.raises(ConfigError, match=rf"model.kwargs.foo=1 is not taken by model={model}; it takes: .*{taken}"):
        make_spec(tmp_path, f"model={model}", "+model.kwargs.foo=1")
    make_spec(tmp_path, f"model={model}", "+model.kwargs.num_classes=10")


def test_the_download_arguments_are_not_model_keywords(tmp_path: Path):
    with pytest.raises(ConfigError, match="model.kwargs.weights='x' is not taken by model=resnet18"):
        make_spec(tmp_path, "+model.kwargs.weights=x")


def test_a_factorys_keywords_are_its_functions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "kw_nets.py").write_text(
        "from torch import nn\n\ndef net(width=8):\n    return nn.Conv2d(3, width, 3)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        ConfigError, match="model.kwargs.depth=2 is not taken by model.factory=kw_nets:net; it takes: width"
    ):
        make_spec(tmp_path, "model.factory=kw_nets:net", "+model.kwargs.depth=2")
    assert make_spec(tmp_path, "model.factory=kw_nets:net", "+model.kwargs.width=4").model.kwargs == {"width": 4}


# -- settings that cannot apply on this device ---------------------------------------------------------------


@pytest.mark.parametrize("algo", algorithms.ALGORITHMS)
@pytest.mark.parametrize(
    ("backend", "fallback", "words"),
    [
        ("cudnn", "none", "backend=cudnn needs a CUDA GPU, and this run measures the cpu"),
        ("reference", "guess", "fallback=guess asks cuDNN's heuristic, which needs backend=cudnn on a GPU"),
    ],
)
def test_a_setting_that_cannot_apply_on_the_cpu_is_refused_for_every_algorithm(
    algo: str, backend: str, fallback: str, words: str
):
    with pytest.raises(ConfigError) as e:
        algorithms.check_runnable(algo, torch.device("cpu"), backend, fallback)
    assert str(e.value).startswith(words)


@pytest.mark.parametrize("algo", algorithms.ALGORITHMS)
def test_a_job_on_the_cpu_refuses_backend_cudnn_before_measuring_whatever_the_algorithm(tmp_path: Path, algo: str):
    from harness.run import runner

    with pytest.raises(ConfigError, match="^backend=cudnn needs a CUDA GPU"):
        runner.validate(make_spec(tmp_path / "results", f"algo={algo}", "backend=cudnn"))
    assert not (tmp_path / "results").exists()
