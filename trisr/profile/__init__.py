"""Latency lookup tables: profiling in the target runtime, calibration, validation."""
