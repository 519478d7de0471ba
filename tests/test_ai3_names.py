"""The registry's ai3 names and harness.algorithms.ai3's device table, held to aithree 0.1.0's sources
(tests/fixtures/ai3-0.1.0-algorithms.json, written from that release's wheel; its "how" says how)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.algorithms import ai3, registry

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "ai3-0.1.0-algorithms.json").read_text())


def test_the_fixture_is_the_version_the_module_names():
    assert FIXTURE["package"] == "aithree" and FIXTURE["version"] == ai3.AI3_VERSION


def test_every_ai3_name_in_the_registry_is_one_ai3_accepts_for_conv2d():
    named = {a.name: a.ai3 for a in registry.algorithms() if a.ai3 is not None}
    assert named, "no algorithm records an ai3 name"
    for ours, theirs in named.items():
        assert theirs in FIXTURE["accepted"]["conv2d"], f"{ours}: ai3 does not accept {theirs!r} for conv2d"


def test_the_names_that_match_are_recorded():
    # ai3's spelling is ours with spaces: every one of our names ai3 accepts must be recorded, not left None
    accepted = set(FIXTURE["accepted"]["conv2d"])
    for a in registry.algorithms():
        if a.name.replace("_", " ") in accepted:
            assert a.ai3 == a.name.replace("_", " "), a.name


def test_the_device_table_is_the_fixtures():
    assert {k: sorted(v) for k, v in ai3.AI3_CONV2D_DEVICES.items()} == {
        k: sorted(v["devices"]) for k, v in FIXTURE["conv2d_devices"].items()
    }
    assert set(ai3.AI3_CONV2D_DEVICES) == set(FIXTURE["accepted"]["conv2d"])


@pytest.mark.parametrize(
    ("device", "ok"),
    [
        ("cpu", {"direct"}),
        ("cuda", {"implicit_gemm", "implicit_precomp_gemm", "gemm", "winograd", "guess"}),
    ],
)
def test_device_support(device: str, ok: set[str]):
    rows = ai3.ai3_device_support(list(registry.names()), device)
    assert [r[0] for r in rows] == list(registry.names())
    assert {name for name, good, _ in rows if good} == ok
    reasons = {name: reason for name, _, reason in rows}
    assert "no fft algorithm" in reasons["fft"]
    text = ai3.format_device_support(rows, device)
    assert text.splitlines()[0] == f"ai3 0.1.0 on {device}:" and len(text.splitlines()) == len(rows) + 1


def test_an_unknown_name_is_refused_not_dropped():
    [(name, ok, reason)] = ai3.ai3_device_support(["nope"], "cpu")
    assert (name, ok) == ("nope", False) and "unknown algorithm" in reason
