"""Benchmarks: `python -m bench` prints inference cost and HTTP throughput side by side."""
