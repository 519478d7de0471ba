"""Hydra's multirun (-m) through the harness's launcher: the whole sweep at once, grouped, not waited for.

Registered explicitly by ``harness.__main__`` (``Plugins.instance().register``) as well as found by Hydra's
scan of the ``hydra_plugins`` namespace: hydra-core 1.3 only scans, and its scan finds nothing under a
PEP 660 editable install (hydra issues #2359, #3252), which is what the README's install command makes.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)


class HarnessLauncher(Launcher):
    def __init__(self, **kwargs: Any) -> None:
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from harness.cli import launch_configs  # the harness side: plain dicts in, a summary out
        from harness.errors import HarnessError

        assert self.config is not None and self.hydra_context is not None
        configs, returns = [], []
        for idx, overrides in enumerate(job_overrides):
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            hydra_cfg = sweep_config.hydra
            with open_dict(sweep_config):
                del sweep_config["hydra"]
            configs.append(OmegaConf.to_container(sweep_config, resolve=True))
            returns.append(JobReturn(
                overrides=list(filter_overrides(overrides)), cfg=sweep_config, hydra_cfg=hydra_cfg,
                working_dir=str(Path.cwd()), task_name="harness", status=JobStatus.COMPLETED,
            ))
        try:
            outcomes = launch_configs(configs)
        except HarnessError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        for ret, outcome in zip(returns, outcomes):
            ret.return_value = outcome
        return returns
