"""mlxcore's benchmarks: scripts, not tests. ``python -m benchmarks`` runs them all (see README.md)."""
