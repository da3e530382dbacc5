"""The Pareto study: searched networks against the zoo and random picks at equal measured latency."""
