"""Hydra's multirun (-m) through the harness's launcher: the whole sweep at once, grouped, not waited for.

Hydra only instantiates plugins whose class path starts with ``hydra_plugins.``, so the classes Hydra sees
are thin subclasses in ``hydra_plugins/harness_launcher/harness_launcher.py`` (the name conf/hydra/launcher
and conf/hydra/sweeper give); the logic lives here, and the harness never imports ``hydra_plugins``.

They are registered explicitly by ``harness.__main__`` (``register_plugins``) as well as found by Hydra's
scan of the ``hydra_plugins`` namespace: hydra-core 1.3 only scans, and its scan finds nothing under a
PEP 660 editable install (hydra issues #2359, #3252), which is what the README's install command makes.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from harness.config.compose import sweep_composer

log = logging.getLogger(__name__)

PLUGIN_MODULE = "hydra_plugins.harness_launcher.harness_launcher"
"""Where Hydra finds the plugin classes: the module conf/hydra/{launcher,sweeper}/harness.yaml name."""


class HarnessLauncher(Launcher):
    def __init__(self, **kwargs: Any) -> None:
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from harness.cli import refuse
        from harness.errors import HarnessError
        from harness.launch.dispatch import (
            launch_configs,  # the harness side: plain dicts in, a summary out
        )

        assert self.config is not None and self.hydra_context is not None
        loader, master = self.hydra_context.config_loader, self.config
        composer = sweep_composer(lambda overrides: loader.load_sweep_config(master, overrides))
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


class NoBatchValidation:
    """The sweeper's change to Hydra's basic sweeper: no composing every job once more to validate the batch
    (the harness's launcher composes and checks every job's config before any job starts).

    A mixin rather than a subclass of BasicSweeper: Hydra's plugin scan re-executes
    ``hydra._internal.core_plugins.basic_sweeper``, and BasicSweeper's ``__init__`` calls
    ``super(BasicSweeper, self)``, so the plugin class must derive from the BasicSweeper current when its
    module runs; the plugin module (see PLUGIN_MODULE) combines this mixin with it."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        return None


class HarnessSweeper(NoBatchValidation, BasicSweeper):
    """Hydra's basic sweeper, without composing every job once more to validate the batch."""


def register_plugins() -> None:
    """Register the launcher and sweeper with Hydra under the names its config gives (see module docstring).

    The plugin module is imported by name: it sits above the harness (it imports this module)."""
    plugins = importlib.import_module(PLUGIN_MODULE)
    Plugins.instance().register(plugins.HarnessLauncher)
    Plugins.instance().register(plugins.HarnessSweeper)
