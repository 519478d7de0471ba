"""Hydra's multirun (-m) through the harness's launcher: the whole sweep at once, grouped, not waited for.

Registered explicitly by ``harness.__main__`` (``Plugins.instance().register``) as well as found by Hydra's
scan of the ``hydra_plugins`` namespace: hydra-core 1.3 only scans, and its scan finds nothing under a
PEP 660 editable install (hydra issues #2359, #3252), which is what the README's install command makes.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from hydra_plugins.harness_launcher.compose import FastComposer

log = logging.getLogger(__name__)


class HarnessLauncher(Launcher):
    def __init__(self, **kwargs: Any) -> None:
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from harness.cli import refuse
        from harness.config.spec import CONF_DIR
        from harness.errors import HarnessError
        from harness.launch.dispatch import (
            launch_configs,  # the harness side: plain dicts in, a summary out
        )

        assert self.config is not None and self.hydra_context is not None
        loader, master = self.hydra_context.config_loader, self.config

        def hydra_compose(overrides: list[str]) -> dict[str, Any]:
            cfg = loader.load_sweep_config(master, overrides)
            with open_dict(cfg):
                del cfg["hydra"]
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]

        composer = FastComposer(_without_hydra(loader.load_sweep_config(master, [])), CONF_DIR, hydra_compose)
        configs = [composer.compose(list(overrides)) for overrides in job_overrides]
        log.debug("composed %d job configs (%d fast, %d by Hydra)", len(configs), composer.fast, composer.slow)
        try:
            outcomes = launch_configs(configs)
        except HarnessError as e:
            sys.exit(refuse(e))  # the border of `python -m harness -m`: Hydra calls the launcher, not a main()
        return [
            JobReturn(
                overrides=list(filter_overrides(overrides)),
                cfg=OmegaConf.create(config),
                hydra_cfg=master.hydra,
                working_dir=str(Path.cwd()),
                task_name="harness",
                status=JobStatus.COMPLETED,
                _return_value=outcome,
            )
            for overrides, config, outcome in zip(job_overrides, configs, outcomes)
        ]


class HarnessSweeper(BasicSweeper):
    """Hydra's basic sweeper, without composing every job once more to validate the batch: the harness's
    launcher composes and checks every job's config before any job starts."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        return None


def _without_hydra(cfg: DictConfig) -> DictConfig:
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
