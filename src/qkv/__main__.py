"""`python -m qkv ...` is the same as `qkv ...` (used by `torchrun -m qkv train ...`)."""

from qkv.cli import main

raise SystemExit(main())
