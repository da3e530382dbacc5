"""Benchmark scripts (results go to docs/benchmarks.md; never timed in tests). Not part of the installed
package: run them from the repository root, ``python -m benchmarks.<name> ...`` (or
``python benchmarks/<name>.py ...``), with trisr installed or the repository root on ``PYTHONPATH``.
"""
