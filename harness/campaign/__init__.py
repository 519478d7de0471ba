"""What a sweep will cost before it runs: the per-phase cost model (``cost``), the dry run's plan of jobs
(``dry_run``) and a SLURM job's time limit from its prediction (``timelimit``)."""
