"""Compiled kernels (built from the top-level ``_ext/*.pyx`` by setup.py)."""

import os

# OpenMP threads that spin-wait (libgomp's default) turn a busy or shared machine into
# 10-20 ms stalls per parallel region: a spinning thread holds the core its partner needs.
# Measured on 2 shared cores: a 2-thread pooling kernel took 15-24 ms spinning, 0.18 ms passive.
# Set before the first kernel loads libgomp; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
