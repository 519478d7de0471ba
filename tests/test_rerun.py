"""harness.rerun: a recorded config back to the overrides that compose it."""

from __future__ import annotations

import pytest

from harness.config.compose import compose_config
from harness.rerun import hydra_value, overrides_for, value_overrides

VALUES = [
    None,
    True,
    False,
    0,
    7,
    -3,
    0.001,
    1e-05,
    2.0,
    "resnet18",
    "/data/models/r18.pt",
    "my models/r 18.pt",
    "it's",
    "1",
    "1.5",
    "null",
    "True",
    "",
    "apptainer exec --nv",
    "a=b,c",
    [32, 48],
    [],
    ["x", "y z"],
    {},
    {"width": 8, "name": "n"},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_a_value_reads_back_as_itself_type_included(value):
    got = compose_config([f"+extra={hydra_value(value)}"])["extra"]
    assert got == value and type(got) is type(value)


def test_only_what_differs_is_overridden_and_what_is_missing_added_or_removed():
    base = {"a": 1, "n": {"x": 1, "y": [1]}, "gone": 3, "repeat": 0}
    config = {"a": 1, "n": {"x": 2, "y": [1], "z": "new"}, "b": 1.0, "repeat": 2}
    assert value_overrides(base, config) == ["n.x=2", "+n.z=new", "+b=1.0", "~gone"]


def test_the_defaults_are_just_the_groups():
    config = compose_config([])
    assert overrides_for(config, compose_config) == [
        "stage=sanity",
        "gpu=local",
        "algo=torch",
        "model=resnet18",
        "launcher=auto",
    ]
