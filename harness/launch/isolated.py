"""Running one task in a process of its own, here: what ``repeats=K`` needs without SLURM.

A repeat is only worth its name if nothing of the process that measured the point before it carries over:
not the allocator's state, not cuDNN's handles and plans, not the warm caches of an imported torch. Each
repeat therefore runs in a freshly spawned interpreter (multiprocessing's "spawn", never "fork"), which
reports each point it finishes and, at the end, its RunResult through a queue; the parent advances its
progress bar and prints the result as it would for a run of its own.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
from collections.abc import Callable
from typing import Any

from harness.errors import HarnessError, brief

log = logging.getLogger(__name__)

POLL_S = 0.5


def run_isolated(
    config: dict[str, Any], run_id: str, label: str, on_point: Callable[[], None], source: Any = None
) -> Any:
    """Run the job of ``config`` under ``run_id`` in a spawned process; returns its RunResult. The child's
    errors come back as a HarnessError in its words; Ctrl-C here stops the child (its points are on disk).
    ``source``: the code's stamp (harness.measure.source.SourceStamp) the rows carry."""
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    child = context.Process(target=_child, args=(config, run_id, events, source), name=f"harness-{run_id}")
    child.start()
    try:
        while True:
            try:
                kind, payload = events.get(timeout=POLL_S)
            except queue.Empty:
                if not child.is_alive():
                    child.join()
                    raise HarnessError(
                        f"the process measuring {label} ended (exit code {child.exitcode}) before it "
                        f"reported; the points it wrote are kept, a rerun measures the rest"
                    ) from None
                continue
            if kind == "point":
                on_point()
            elif kind == "done":
                child.join()
                return payload
            else:
                child.join()
                raise HarnessError(f"{label}: {payload}")
    except BaseException:
        if child.is_alive():
            child.terminate()
            child.join()
        raise


def _child(config: dict[str, Any], run_id: str, events: Any, source: Any = None) -> None:
    """The spawned process: validate the config again (it is a new interpreter), run, report."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from harness.config.spec import run_spec_from_dict
    from harness.run.runner import run

    try:
        result = run(
            run_spec_from_dict(config),
            config=config,
            run_id=run_id,
            on_point=lambda key, point: events.put(("point", None)),
            source=source,
        )
    except HarnessError as e:
        events.put(("error", str(e)))
        return
    except Exception as e:  # noqa: BLE001 - reported to the parent in one line, with the log's traceback
        log.exception("the isolated run failed")
        events.put(("error", brief(e)))
        return
    events.put(("done", result))
