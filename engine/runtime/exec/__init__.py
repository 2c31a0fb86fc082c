"""Execution: the runner, the executor's task group and channels, the job handle, and the injected clock."""
