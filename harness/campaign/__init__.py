"""Campaigns over many points: the adaptive size grid (``adaptive``: which sizes next, and why; ``rounds``: its
journal), what a sweep will cost before it runs (``cost``: the per-phase cost model), the dry run's plan of jobs
(``dry_run``) and a SLURM job's time limit from its prediction (``timelimit``)."""
