"""millstream's benchmark suite: throughput against a bare-Python loop computing the same result, and Beam.

Run from the repository root with ``.venv/bin/python -P bench [names...]`` (``make bench``); ``--help`` lists
the options. Benchmarks register themselves in `bench.workloads`; the runner lives in `bench.core`.
"""
