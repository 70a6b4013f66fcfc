"""qkv: Query/Key/Value attention you can run, measure and see."""

__version__ = "0.1.0"
