"""Launching: run here or submit to SLURM (submitit job arrays, manifests), and the console views."""
