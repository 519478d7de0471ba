"""`python -m harness key=value ...`: measure one stage x model x algorithm x GPU type (Hydra entry point).

Thin on purpose: resolve Hydra's config, hand it to ``harness.launch.dispatch``; a HarnessError is refused at
the border (harness/cli.py: one line on stderr, exit code 2). Multirun (-m) goes through the harness's launcher
plugin, which is registered here explicitly (see harness/launch/hydra_launcher.py).
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from harness.cli import refuse
from harness.errors import HarnessError
from harness.launch.dispatch import launch_configs
from harness.launch.hydra_launcher import register_plugins

register_plugins()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        launch_configs([OmegaConf.to_container(cfg, resolve=True)])
    except HarnessError as e:
        sys.exit(refuse(e))  # Hydra ignores what its task function returns


def refuse_uncomposable(argv: list[str]) -> None:
    """A single run whose overrides Hydra cannot compose (an unknown config group option, an override it
    cannot parse, an interpolation that does not resolve) is refused here in one line, exit 2, as every other
    bad value is; Hydra would print its own several lines and exit 1. Multiruns, and runs with Hydra's own
    flags (--cfg, --help, ...), are left to Hydra: their overrides are sweeps or not a run."""
    if any(a.startswith("-") for a in argv):
        return
    from harness.config.compose import compose_config

    try:
        compose_config(argv)
    except HarnessError as e:
        sys.exit(refuse(e))


if __name__ == "__main__":
    refuse_uncomposable(sys.argv[1:])
    main()
