"""The code that measured (harness.measure.source): a real git repository in tmp_path for each state a tree can
be in, the stamp taken at submission, and the rows of a run on a machine without git."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from harness.launch.submit import SubmittedGroup, Sweep, _job_arguments, make_tasks, write_manifest
from harness.measure.source import GitUnavailable, SourceStamp, job_source, read_source, stamp_at_submission
from harness.results.read import read
from harness.run.runner import run
from tests.helpers import compose_config, make_spec

TINY = [
    "model=resnet18",
    "algo=torch",
    "stage.sizes=[64]",
    "stage.warmup_iters=1",
    "stage.min_iters=3",
    "stage.max_iters=3",
    "stage.layer_iters=1",
]


def _git(repo: Path, *args: str) -> str:
    env = os.environ | {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository like the harness's: a package, conf/, an ignored results folder, one commit."""
    repo = tmp_path / "repo"
    (repo / "harness").mkdir(parents=True)
    (repo / "conf").mkdir()
    (repo / "harness" / "point.py").write_text("x = 1\n")
    (repo / "conf" / "config.yaml").write_text("a: 1\n")
    (repo / ".gitignore").write_text("/results/\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    return repo


def _head(repo: Path) -> str:
    return _git(repo, "rev-parse", "HEAD").strip()


def test_a_clean_checkout_is_clean(repo: Path):
    stamp = read_source(repo / "harness")
    assert stamp.commit == _head(repo) and len(stamp.commit) == 40
    assert stamp.dirty is False and stamp.diff_hash is None
    assert stamp.columns() == {"git_commit": _head(repo), "git_dirty": False, "git_diff_hash": None}


def test_a_touched_or_recopied_file_with_the_same_content_is_clean(repo: Path):
    f = repo / "harness" / "point.py"
    os.utime(f, (1, 1))  # another time, as a copy to another machine gives
    f.chmod(0o755)  # and another mode
    (repo / "results").mkdir()
    (repo / "results" / "points.parquet").write_bytes(b"ignored output")
    (repo / "notes.txt").write_text("untracked, outside what a run imports")
    assert "point.py" in _git(repo, "-c", "core.fileMode=true", "status", "--porcelain")  # git status: modified
    stamp = read_source(repo)
    assert stamp.dirty is False and stamp.diff_hash is None


def test_a_real_edit_is_dirty_and_its_hash_follows_the_content(repo: Path):
    f = repo / "harness" / "point.py"
    f.write_text("x = 2\n")
    first = read_source(repo)
    assert first.dirty is True and first.commit == _head(repo) and len(first.diff_hash) == 16
    assert read_source(repo).diff_hash == first.diff_hash  # the same difference, the same hash
    f.write_text("x = 3\n")
    assert read_source(repo).diff_hash != first.diff_hash
    f.write_text("x = 1\n")  # back to the commit's content
    assert read_source(repo).dirty is False


def test_a_staged_edit_is_dirty(repo: Path):
    (repo / "conf" / "config.yaml").write_text("a: 2\n")
    _git(repo, "add", "conf/config.yaml")
    assert read_source(repo).dirty is True


def test_an_untracked_file_under_the_source_is_dirty(repo: Path):
    new = repo / "harness" / "extra.py"
    new.write_text("y = 1\n")
    stamp = read_source(repo)
    assert stamp.dirty is True and stamp.diff_hash is not None
    new.write_text("y = 2\n")
    assert read_source(repo).diff_hash != stamp.diff_hash  # its content, not only its name


def test_no_git_at_all(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    not_a_repo = tmp_path / "copy"
    shutil.copytree(repo, not_a_repo, ignore=shutil.ignore_patterns(".git"))
    with pytest.raises(GitUnavailable, match="not a git repository"):
        read_source(not_a_repo)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no git executable
    with pytest.raises(GitUnavailable):
        read_source(repo)
    with caplog.at_level(logging.WARNING):
        assert stamp_at_submission(repo) is None
    assert "git_commit null" in caplog.text


def test_the_job_keeps_the_submissions_stamp(repo: Path, caplog: pytest.LogCaptureFixture):
    submitted = read_source(repo, read_by="submission")
    assert job_source(submitted, repo) == submitted
    assert job_source(None, repo).read_by == "job"  # not submitted (the Python API): read here
    (repo / "harness" / "point.py").write_text("x = 5\n")  # the job's tree is not the one submitted
    with caplog.at_level(logging.WARNING):
        assert job_source(submitted, repo) == submitted
    assert "not the one submitted" in caplog.text
    assert SourceStamp.from_dict(json.loads(json.dumps(submitted.to_dict()))) == submitted


def test_the_stamp_travels_from_submission_to_the_rows_without_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo: Path
):
    """Submission: the task, the job's arguments and the sweep manifest carry the stamp; the job, on a machine
    with no git, writes it into its rows and its run manifest."""
    stamp = read_source(repo, read_by="submission")
    (task,) = make_tasks(compose_config(f"results_dir={tmp_path / 'r'}", "device=cpu", *TINY), stamp)
    assert task.source == stamp
    config, run_id, source = _job_arguments(task)
    assert (config, run_id) == (task.config, task.run_id) and SourceStamp.from_dict(source) == stamp

    class Job:
        job_id = "42"
        paths = type("Paths", (), {"stdout": tmp_path / "42.out"})()

    sweep = Sweep("s1", tmp_path / "jobs" / "s1", [SubmittedGroup({}, [task], [Job()])])
    manifest = json.loads(write_manifest(sweep, type("L", (), {"max_requeues": 1})()).read_text())
    assert manifest["source"] == stamp.to_dict()

    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # the job's machine has no git
    result = run(make_spec(tmp_path / "r", *TINY), source=SourceStamp.from_dict(source))
    (point,) = read(tmp_path / "r").to_dict("records")
    assert (point["git_commit"], point["git_dirty"]) == (stamp.commit, False) and pd.isna(point["git_diff_hash"])
    run_doc = json.loads(next(result.directory.glob("run-*.json")).read_text())
    assert run_doc["source"]["read_by"] == "submission" and run_doc["environment"]["git_commit"] == stamp.commit


def test_rows_of_a_run_here_carry_this_trees_commit(tmp_path: Path):
    """No stamp given (harness.api, a plain run): the job reads the harness's own tree."""
    here = job_source(None)
    (task,) = make_tasks(compose_config(f"results_dir={tmp_path}", "device=cpu", *TINY))  # stamped here
    assert (task.source.commit, task.source.read_by) == (here.commit, "submission") if here else task.source is None
    run(make_spec(tmp_path, *TINY))
    (point,) = read(tmp_path).to_dict("records")
    if here is None:  # an installed copy without git
        assert point["git_commit"] is None
    else:
        assert point["git_commit"] == here.commit and point["git_dirty"] == here.dirty
