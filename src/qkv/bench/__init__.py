"""Benchmarks: `qkv bench attention|train|generate`. They print tables and save JSON; tests never time."""
