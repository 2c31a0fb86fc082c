"""The runtime: planner, operators, executor, watermarks, clock. Imports the model, never the reverse."""
