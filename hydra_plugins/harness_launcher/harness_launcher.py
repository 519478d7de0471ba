"""Hydra's plugin names for the harness's launcher and sweeper; the logic is harness/launch/hydra_launcher.py.

Hydra instantiates only plugins whose class is defined under ``hydra_plugins.`` (its ``__module__``), so the
classes are subclassed here rather than re-exported. The implementation module is imported as a module, not
its classes, so that Hydra's scan of this module finds each plugin once.
"""

from __future__ import annotations

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

from harness.launch import hydra_launcher as _impl


class HarnessLauncher(_impl.HarnessLauncher):
    """``conf/hydra/launcher/harness.yaml``'s target: harness.launch.hydra_launcher.HarnessLauncher."""


class HarnessSweeper(_impl.NoBatchValidation, BasicSweeper):
    """``conf/hydra/sweeper/harness.yaml``'s target: harness.launch.hydra_launcher.HarnessSweeper (built on
    the BasicSweeper current when this module runs: see NoBatchValidation)."""
