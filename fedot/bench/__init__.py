"""Benchmarks behind ``make bench``; each writes a table to ``docs/benchmarks.md`` and a PNG.

Speed is measured here, side by side in one process, never in timed tests.
"""
