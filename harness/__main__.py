"""`python -m harness key=value ...`: measure one stage x model x algorithm x GPU type (Hydra entry point).

Thin on purpose: turn Hydra's config into a RunSpec, run it, show the result. Errors a user can fix are
printed as one message (no traceback) with exit code 2.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from harness import console
from harness.errors import HarnessError
from harness.runner import plan_points, run
from harness.spec import run_spec_from_dict

log = logging.getLogger("harness")


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    out = Console()
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
        spec = run_spec_from_dict(resolved)
        total = len(plan_points(spec))
        with console.progress(Console(stderr=True)) as bar:
            task = bar.add_task(f"{spec.model.name} {spec.algo} {spec.stage.name}", total=total)
            result = run(spec, config=resolved, on_point=lambda key, point: bar.advance(task))
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    console.report(out, result)
    if any(p["status"] != "ok" for p in result.points):
        log.warning("some points did not measure ok; see the status column")


if __name__ == "__main__":
    main()
