"""The gateway benchmark: `python -m bench.gateway.run` (see README.md beside this file)."""
