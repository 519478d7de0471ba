"""The code that measured: the harness's git commit, whether its tree differs from it, and a hash of how.

Read once where a sweep is submitted (``SourceStamp`` travels with each task into the job and the manifests):
a SLURM job, a container or a copy of the tree on a GPU machine may have no git, another checkout, or a tree
whose files git sees as touched (copied files get new times and modes). The job uses the stamp it was given.

"Dirty" is claimed only from content: ``git diff HEAD`` compares the contents of stat-changed files (a
touched but unchanged file is clean) and ``core.fileMode=false`` ignores mode bits (a copy that lost or gained
an executable bit is clean); untracked files count where git does not ignore them and they lie under the paths
a run imports or composes (the package and conf/, ``SOURCE_PATHS``): an untracked notes file at the top is
not part of what measured, a new module under harness/ is. The diff hash (sha256 of the binary diff and of
each such untracked file's path and content) tells two dirty trees apart.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # harness/
SOURCE_PATHS = ("harness", "conf")  # relative to the repository's top: what a run imports and composes
_GIT_TIMEOUT_S = 10


@dataclass(frozen=True)
class SourceStamp:
    """The harness's commit and its tree's state, where and when they were read."""

    commit: str  # HEAD, 40 hex digits
    dirty: bool  # the tree's content differs from the commit (tracked files, or untracked ones under SOURCE_PATHS)
    diff_hash: str | None  # sha256 (16 hex digits) of that difference; None where clean
    read_at: str  # ISO time, UTC
    read_on: str  # the host
    read_by: str  # "submission" (stamped where the sweep was launched) or "job" (read by the job itself)

    def columns(self) -> dict[str, Any]:
        """The rows' provenance columns."""
        return {"git_commit": self.commit, "git_dirty": self.dirty, "git_diff_hash": self.diff_hash}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SourceStamp:
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})

    def describe(self) -> str:
        state = f"dirty, diff {self.diff_hash}" if self.dirty else "clean"
        return f"{self.commit[:12]} ({state})"


class GitUnavailable(Exception):
    """No git here, not a repository, or git refused (e.g. a tree owned by another user)."""


def _git(repo: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-c", "core.fileMode=false", *args],
            cwd=repo,
            capture_output=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise GitUnavailable(f"git {args[0]}: {e}") from None
    if done.returncode != 0:
        raise GitUnavailable(f"git {args[0]}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _untracked(top: Path, paths: Sequence[str]) -> list[str]:
    """Untracked files git does not ignore, under ``paths`` (relative to ``top``), sorted."""
    existing = [p for p in paths if (top / p).exists()]
    if not existing:
        return []
    out = _git(top, "ls-files", "--others", "--exclude-standard", "-z", "--", *existing)
    return sorted(name for name in out.decode().split("\0") if name)


def diff_hash(diff: bytes, top: Path, untracked: Sequence[str]) -> str:
    """sha256 (16 hex digits) of a binary diff and of each untracked file's path and content."""
    h = hashlib.sha256(diff)
    for name in untracked:
        h.update(b"\0untracked\0" + name.encode() + b"\0")
        try:
            h.update(hashlib.sha256((top / name).read_bytes()).digest())
        except OSError as e:  # vanished or unreadable meanwhile: its name still counts
            h.update(f"unreadable: {e}".encode())
    return h.hexdigest()[:16]


def read_source(
    path: Path = PACKAGE_DIR, source_paths: Sequence[str] = SOURCE_PATHS, read_by: str = "job"
) -> SourceStamp:
    """The stamp of the git tree holding ``path``; GitUnavailable where git cannot say."""
    top = Path(_git(path, "rev-parse", "--show-toplevel").decode().strip())
    commit = _git(top, "rev-parse", "--verify", "HEAD").decode().strip()
    diff = _git(top, "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", "--no-textconv")
    untracked = _untracked(top, source_paths)
    dirty = bool(diff) or bool(untracked)
    return SourceStamp(
        commit=commit,
        dirty=dirty,
        diff_hash=diff_hash(diff, top, untracked) if dirty else None,
        read_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        read_on=socket.gethostname(),
        read_by=read_by,
    )


def stamp_at_submission(path: Path = PACKAGE_DIR) -> SourceStamp | None:
    """The stamp a sweep carries into its jobs; None (and a warning why) where this tree has no git."""
    try:
        stamp = read_source(path, read_by="submission")
    except GitUnavailable as e:
        log.warning("the harness's commit is not known here (%s): rows will have git_commit null", e)
        return None
    if stamp.dirty:
        log.info("the harness tree differs from commit %s: rows say git_dirty (diff %s)", stamp.commit, stamp.diff_hash)
    return stamp


def job_source(stamp: SourceStamp | None, path: Path = PACKAGE_DIR) -> SourceStamp | None:
    """The stamp a job's rows carry: the one it was given at submission, else what git says here (None where
    neither knows). Where both exist and differ, the submission's wins and a warning says how they differ."""
    try:
        here = read_source(path, read_by="job")
    except GitUnavailable as e:
        if stamp is None:
            log.info("the harness's commit is not known (%s, and no stamp from a submission)", e)
        return stamp
    if stamp is None:
        return here
    if (here.commit, here.diff_hash) != (stamp.commit, stamp.diff_hash):
        log.warning(
            "this job's tree (%s) is not the one submitted (%s): the rows carry the submission's",
            here.describe(),
            stamp.describe(),
        )
    return stamp
