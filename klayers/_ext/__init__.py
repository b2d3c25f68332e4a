"""Compiled kernels (built from the top-level ``_ext/*.pyx`` by setup.py)."""

import os

# How long an OpenMP thread spin-waits for the next parallel region before it sleeps. Waking a
# sleeping thread costs 60-90 us here (2-core VM): with libgomp's passive policy every 2-thread
# kernel paid it, so a 1x1 conv of 24 us on one thread took 85 on two, and a model of 50 layers
# lost milliseconds. Spinning forever (libgomp's default without a policy, or ACTIVE) holds a
# core that another thread or process may need: on 2 shared cores a 2-thread pooling kernel
# then stalled for 15-24 ms. A bounded spin does both: 30,000 spins (about 0.2-1 ms here) cover
# the gaps between the layers of a model (tens of us), then the thread sleeps.
# Set before the first kernel loads libgomp; a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "30000"
