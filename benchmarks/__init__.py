"""Benchmarks (not tests, not installed): ``make bench`` runs them from the repository root; results in docs/benchmarks.md."""
