"""millstream engine: the pipeline model (`model`), the planner and runtime (`runtime`)."""
