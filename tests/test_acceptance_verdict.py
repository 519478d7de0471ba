"""The verdict: its Markdown, the environment, the device slug and the verdict's path."""

from __future__ import annotations

from pathlib import Path

from harness import acceptance as acc
from harness.acceptance import (
    FAIL,
    Check,
    Evidence,
    evaluate,
    render_markdown,
)
from harness.acceptance.verdict import merge_verdict, sections
from tests.acceptance_rows import (
    H100,
    good_evidence,
    point,
)

# ---- Markdown -------------------------------------------------------------------------------------------------


def test_markdown_has_environment_commands_checks_and_details():
    checks = evaluate(good_evidence())
    at = next(i for i, c in enumerate(checks) if c.name == "cv per point")
    checks[at] = Check("cv per point", "cv <= 2.00%", "35 of 36 | worst 3.00%", FAIL, ({"point": "p", "cv": "3.00%"},))
    env = acc.environment_from_rows(good_evidence().rows()) | {
        "date": "2025-06-01",
        "commands": ["python -m harness.acceptance", "python -m pytest -m gpu", "python -m harness a=b"],
    }
    text = render_markdown(checks, env)
    assert text.startswith(f"# GPU acceptance: {H100}, 2025-06-01")
    assert "Verdict: **FAIL: cv per point**" in text and "## Suite core: FAIL" in text
    assert "Verdict of the suites run: **FAIL** (not run on this date: regimes, energy, training)" in text
    for fact in ("570.86.15", "2.14.1", "| CUDA | 12.8 |", "91000", "python -m pytest -m gpu", "python -m harness a=b"):
        assert fact in text, fact
    assert "| check | goal | figure | verdict |" in text
    assert "| cv per point | cv <= 2.00% | 35 of 36 \\| worst 3.00% | FAIL |" in text
    assert "| errors | no point with status error | 0 of " in text and "| PASS |" in text
    for c in checks:
        assert f"#### {c.name}: {c.verdict}" in text
    assert "| model | algo | float32 fma fallback=none |" in text  # the support matrix
    assert "| torch p50 ms | guess p50 ms | ratio |" in text.replace("| model | input size | batch ", "")


def test_environment_slug_and_paths(tmp_path: Path):
    env = acc.environment_from_rows([point(), point(driver_version=None), {"status": "oom"}])
    assert env["device_name"] == H100 and env["driver_version"] == "570.86.15" and env["cudnn_version"] == "91000"
    assert acc.device_slug(H100) == "nvidia-h100-80gb-hbm3"
    assert acc.device_slug("NVIDIA H200 NVL (MIG 1g.18gb)") == "nvidia-h200-nvl-mig-1g-18gb"
    first = acc.verdict_path(tmp_path, H100, "2025-06-01")
    assert first.name == "nvidia-h100-80gb-hbm3-2025-06-01.md"
    first.write_text("x")  # a verdict from before suites: never overwritten
    assert acc.verdict_path(tmp_path, H100, "2025-06-01").name == "nvidia-h100-80gb-hbm3-2025-06-01-2.md"
    first.write_text(render_markdown(evaluate(good_evidence()), {"date": "2025-06-01"}))  # suites add to it
    assert acc.verdict_path(tmp_path, H100, "2025-06-01") == first


def test_suites_add_their_sections_to_one_verdict_and_a_rerun_replaces_its_own():
    env = {"device_name": H100, "date": "2025-06-01"}
    core = evaluate(good_evidence())
    regimes = evaluate(Evidence(None, good_evidence().jobs[:3], [], "regimes"))
    text = merge_verdict(None, "regimes", regimes, env | {"commands": ["first regimes run"]})
    text = merge_verdict(text, "core", core, env)
    assert list(sections(text)) == ["core", "regimes"]  # the suites' order of value, whatever the order run
    assert "Verdict of the suites run: **PASS** (not run on this date: energy, training)" in text
    assert "| [core](#suite-core-pass) | PASS |" in text and "| [regimes](#suite-regimes-pass) | PASS |" in text
    failing = [c if c.name != "errors" else Check(c.name, c.goal, "1 of 3", FAIL) for c in regimes]
    again = merge_verdict(text, "regimes", failing, env | {"commands": ["second regimes run"]})
    assert sections(again)["core"] == sections(text)["core"]  # the other suite's section as it was
    assert "second regimes run" in again and "first regimes run" not in again
    assert "Verdict of the suites run: **FAIL**" in again and "| [regimes](#suite-regimes-fail) | FAIL |" in again
    assert [c.name for c in regimes][:2] == ["runs completed", "errors"]
    assert "ranking per regime" in {c.name for c in regimes} and "GPU test suite" not in {c.name for c in regimes}
