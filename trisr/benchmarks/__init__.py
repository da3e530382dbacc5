"""Benchmark scripts (results go to docs/benchmarks.md; never timed in tests)."""
