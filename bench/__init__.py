"""Benchmarks: each module measures a figure as a ratio side by side in one run."""
