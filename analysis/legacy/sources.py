"""The old system's CSVs found in a tarball, folder or files: their names parsed into a combination, and
their lines read with the columns they must have (a bad file or line is reported and skipped).
"""

from __future__ import annotations

import csv
import io
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

from analysis.legacy.records import Combo, ImportReport, Issue, Source
from harness.algorithms import ALGORITHMS

COMBINED = "combined_overall.csv"


FILE_NAME = re.compile(r"^(?P<stem>[a-z0-9_]+)_(?P<kind>overall|layers)_(?P<gpu>[a-z0-9]+)\.csv$")


# -- reading inputs ----------------------------------------------------------------------------------------
def sources(paths: list[Path], report: ImportReport) -> Iterator[Source]:
    """Every CSV in the inputs (tarballs, folders, files); unreadable ones are reported."""
    for path in paths:
        if path.is_dir():
            for f in sorted(path.rglob("*.csv")):
                yield from file_sources(f, f.relative_to(path).as_posix(), report)
        elif path.is_file() and (path.name.endswith((".tar.gz", ".tgz", ".tar"))):
            try:
                with tarfile.open(path) as tar:
                    for member in tar:
                        if not (member.isfile() and member.name.endswith(".csv")):
                            continue
                        base = Path(member.name).name
                        f = tar.extractfile(member)
                        yield Source(f"{path.name}!{base}", base, f.read() if f else b"")
            except (OSError, tarfile.TarError, EOFError) as e:
                report.issues.append(Issue(str(path), None, f"unreadable archive: {e}"))
        elif path.is_file():
            yield from file_sources(path, path.name, report)
        else:
            report.issues.append(Issue(str(path), None, "no such file or folder"))


def file_sources(path: Path, label: str, report: ImportReport) -> Iterator[Source]:
    try:
        yield Source(label, path.name, path.read_bytes())
    except OSError as e:
        report.issues.append(Issue(label, None, f"unreadable: {e.strerror or e}"))


def parse_name(name: str) -> tuple[Combo, str]:
    """``<model>_<algo>_<overall|layers>_<gpu>.csv`` -> (combination, kind); ValueError if not that."""
    m = FILE_NAME.match(name)
    if not m:
        raise ValueError("not a <model>_<algo>_<overall|layers>_<gpu>.csv file name")
    stem = m["stem"]
    algos = sorted((a for a in ALGORITHMS if stem.endswith("_" + a)), key=len, reverse=True)
    if not algos:
        raise ValueError(f"no known algorithm at the end of {stem!r} (known: {', '.join(ALGORITHMS)})")
    algo = algos[0]
    return Combo(stem[: -len(algo) - 1], algo, m["gpu"]), m["kind"]


def read_rows(src: Source, required: tuple[str, ...], report: ImportReport) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV; a file without the required columns, or a malformed line, is reported."""
    try:
        text = src.data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        report.issues.append(Issue(src.label, None, f"not UTF-8 text: {e}"))
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        report.issues.append(Issue(src.label, None, "empty file"))
        return
    except csv.Error as e:
        report.issues.append(Issue(src.label, 1, f"bad CSV header: {e}"))
        return
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        report.issues.append(Issue(src.label, None, f"missing column(s) {', '.join(missing)}; has {', '.join(header)}"))
        return
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            report.issues.append(Issue(src.label, reader.line_num, f"bad CSV: {e}"))
            continue
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            report.issues.append(
                Issue(
                    src.label, reader.line_num, f"{len(fields)} fields, the header has {len(header)} (truncated line?)"
                )
            )
            continue
        yield reader.line_num, dict(zip(header, (f.strip() for f in fields)))
