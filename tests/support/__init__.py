"""Shared test support: the kill -9 harness, the subprocess job runner and the in-process operator harness.

Importable as `support` from every test: pyproject.toml puts `tests/` on the path (pytest's ``pythonpath``),
so job subprocesses and Beam's pickling find these modules by their real names.
"""
