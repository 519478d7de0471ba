"""Where the Hydra config groups live (conf/) and which options each offers: one owner for both."""

from __future__ import annotations

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent.parent.parent / "conf"


def group_choices(group: str, conf_dir: Path = CONF_DIR) -> tuple[str, ...]:
    """The option names of a config group: the yaml files in conf/<group>/."""
    return tuple(sorted(p.stem for p in (conf_dir / group).glob("*.yaml")))
