"""dlref benchmarks: run with ``python -m benchmarks``."""
