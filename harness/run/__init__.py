"""One job: the points it plans, the sanity gate before a stage, measuring each point and storing it."""
