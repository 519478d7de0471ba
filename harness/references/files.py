"""Reading and writing a references file (YAML): the I/O edge of harness.references."""

from __future__ import annotations

from pathlib import Path

import yaml

from harness.atomic import write_text_atomic
from harness.errors import brief
from harness.references.format import References, ReferencesError, parse

HEADER = """\
# Performance references of conv-harness (python -m analysis.bless wrote this; edit freely, keep the format).
# Per gpu type: each point's key (stage, model, algo, input_size, batch_size, dtype, the settings it was
# measured with), its median latency with the 95% confidence interval, energy, and the relative tolerance a
# run checks against (python -m harness references=THIS_FILE: each point row gets reference_status).
"""


def load(path: str | Path) -> References:
    """Read and validate a references file; ReferencesError names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        hint = " (it is a folder)" if path.is_dir() else ""
        raise ReferencesError(f"references file {path} does not exist{hint}; write one with python -m analysis.bless")
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ReferencesError(f"references file {path} cannot be read: {brief(e)}") from None
    return parse(doc, str(path))


def save(refs: References, path: str | Path) -> Path:
    """Write ``refs`` as YAML (header comment, keys in a readable order), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = HEADER + yaml.safe_dump(refs.to_doc(), sort_keys=False, default_flow_style=None, width=120)
    write_text_atomic(text, path)
    return path
