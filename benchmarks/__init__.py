"""Speed benchmarks (run as modules: python -m benchmarks.NAME)."""
