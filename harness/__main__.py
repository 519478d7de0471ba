"""`python -m harness key=value ...`: measure one stage x model x algorithm x GPU type (Hydra entry point).

Thin on purpose: resolve Hydra's config, hand it to ``harness.launch.dispatch``; a HarnessError is refused at
the border (harness/cli.py: one line on stderr, exit code 2). Multirun (-m) goes through the harness's launcher
plugin, which is registered here explicitly (see hydra_plugins/harness_launcher).
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.plugins import Plugins
from omegaconf import DictConfig, OmegaConf

from harness.cli import refuse
from harness.errors import HarnessError
from harness.launch.dispatch import launch_configs
from hydra_plugins.harness_launcher.harness_launcher import (
    HarnessLauncher,
    HarnessSweeper,
)

Plugins.instance().register(HarnessLauncher)
Plugins.instance().register(HarnessSweeper)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        launch_configs([OmegaConf.to_container(cfg, resolve=True)])
    except HarnessError as e:
        sys.exit(refuse(e))  # Hydra ignores what its task function returns


if __name__ == "__main__":
    main()
