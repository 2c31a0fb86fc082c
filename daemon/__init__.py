"""Running pipelines as jobs: the command line, the supervisor (signals, exit codes), the control endpoint,
metrics, logs, templates."""
