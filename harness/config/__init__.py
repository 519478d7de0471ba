"""Configuration: the validated, typed run specs made from Hydra's config (checked once, here)."""
