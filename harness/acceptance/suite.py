"""The GPU test suite (``pytest -m gpu``) in a subprocess, and its JUnit XML read back."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.acceptance.budget import TESTS_TIMEOUT_S
from harness.acceptance.rows import _first_line

REPO = Path(__file__).resolve().parents[2]


# The acceptance command's own GPU test runs this command: it must not run inside it (recursion).
SELF_TEST = "tests/test_acceptance.py::test_quick_acceptance_on_gpu"
INSIDE_ENV = "HARNESS_ACCEPTANCE_RUNNING"


@dataclass
class SuiteReport:
    """What the GPU test suite did, from its JUnit XML."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    cases: list[tuple[str, str, str]] = field(default_factory=list)  # (test, passed|failed|skipped, message)
    returncode: int | None = None
    note: str | None = None  # why there is no (complete) report: a timeout, no XML

    def names(self, outcome: str) -> list[str]:
        return [f"{name}: {msg}" if msg else name for name, o, msg in self.cases if o == outcome]


def parse_junit(xml_text: str) -> SuiteReport:
    """Counts and names from pytest's JUnit XML (a failure or error in any phase counts as failed)."""
    report = SuiteReport()
    for case in ET.fromstring(xml_text).iter("testcase"):
        name = "::".join(p for p in (case.get("classname"), case.get("name")) if p)
        bad = case.find("failure")
        bad = bad if bad is not None else case.find("error")
        skip = case.find("skipped")
        if bad is not None:
            outcome, node = "failed", bad
        elif skip is not None:
            outcome, node = "skipped", skip
        else:
            outcome, node = "passed", None
        msg = _first_line(node.get("message") or node.text) if node is not None else ""
        report.cases.append((name, outcome, msg))
    counts = Counter(o for _, o, _ in report.cases)
    report.passed, report.failed, report.skipped = counts["passed"], counts["failed"], counts["skipped"]
    return report


def gpu_test_command(junit: Path, tests: Sequence[str] = ()) -> list[str]:
    """``pytest -m gpu``: every GPU test, or those of the files ``tests`` (a suite's own)."""
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", f"--junitxml={junit}", "--deselect", SELF_TEST]
    return cmd + list(tests)


def run_gpu_tests(
    junit: Path, output: Path, timeout_s: float = TESTS_TIMEOUT_S, tests: Sequence[str] = ()
) -> SuiteReport:
    """``pytest -m gpu`` (of the files ``tests`` where given) in a subprocess at the repository root; its
    output goes to ``output``."""
    cmd = gpu_test_command(junit, tests)
    env = os.environ | {INSIDE_ENV: "1"}
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        output.write_text(_text(e.stdout) + _text(e.stderr))
        return SuiteReport(note=f"pytest did not finish within {timeout_s:g} s (output: {output})")
    output.write_text(proc.stdout + proc.stderr)
    if not junit.is_file():
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        return SuiteReport(
            returncode=proc.returncode, note=f"no JUnit XML (pytest exit code {proc.returncode}): {tail}"
        )
    report = parse_junit(junit.read_text())
    report.returncode = proc.returncode
    return report


def _text(b: bytes | str | None) -> str:
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
