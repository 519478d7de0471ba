"""What the adaptive grid's decider job runs (harness.launch.decider submits it after a round's jobs):

    python -m harness.launch.decider_job JOURNAL

the campaign of the journal advanced one step: an unfinished round launched again, or the next round
decided and submitted with the next decider chained after it, or the campaign's end recorded. Run by hand,
it does the same (a decider job that was cancelled, say).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from harness.campaign import rounds
from harness.cli import refuse
from harness.errors import HarnessError
from harness.launch.decider import submit_decider
from harness.launch.dispatch import launch_configs


def decide_next(journal: Path) -> dict[str, Any]:
    # The round's jobs are submitted from here, not run here: inside a job, the job's SLURM_ variables would
    # make the launcher run them in it (harness.launch.submit.where) and leak into their sbatch.
    for name in [k for k in os.environ if k.startswith("SLURM_")]:
        del os.environ[name]
    campaign = rounds.campaign_from_journal(journal)
    configs = [m.config for m in campaign.members]
    doc = rounds.advance(campaign, launch_configs, lambda jobs, j: submit_decider(jobs, j, configs))
    return rounds.summary(doc)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m harness.launch.decider_job JOURNAL", file=sys.stderr)
        return 2
    try:
        print(decide_next(Path(args[0])))
    except HarnessError as e:
        return refuse(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
