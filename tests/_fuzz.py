"""Shared helpers of the fuzz suites (tests/*/test_fuzz_*.py, tests/package/test_threads_resources.py).

Hypothesis profiles: ``KLAYERS_FUZZ_PROFILE=long`` runs many more examples locally; the default
("ci") keeps every fuzz suite to a few seconds on 2 cores. Profiles are applied per test through
:data:`FUZZ` (never with ``settings.load_profile``, which would change every other test's
defaults).

``run_isolated`` runs a Python snippet in a child interpreter so that a crash in a compiled
kernel (a signal) fails one test instead of killing the run, and reports the signal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from typing import Optional

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("KLAYERS_FUZZ_PROFILE", "ci")
if PROFILE not in ("ci", "long"):
    raise ValueError(f"KLAYERS_FUZZ_PROFILE must be 'ci' or 'long'. Received {PROFILE!r}")
LONG = PROFILE == "long"

#: The hypothesis settings of every fuzz test: bounded in CI, larger with KLAYERS_FUZZ_PROFILE=long.
FUZZ = settings(
    max_examples=400 if LONG else 25,
    deadline=None,
    derandomize=not LONG,  # CI is reproducible; the long profile explores
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],
    database=None,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_isolated(code: str, timeout: float = 120, env: Optional[dict] = None,
                 limit_as_bytes: Optional[int] = None, cwd: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run ``code`` with ``sys.executable`` in a fresh interpreter; fail on a signal or a timeout.

    ``limit_as_bytes`` caps the child's address space (``RLIMIT_AS``) so that a multi-GB
    allocation fails there (MemoryError) instead of being made. Returns the completed process
    (the caller checks ``returncode`` / output).
    """
    prelude = ""
    if limit_as_bytes is not None:
        prelude = (
            "import resource\n"
            f"resource.setrlimit(resource.RLIMIT_AS, ({int(limit_as_bytes)}, {int(limit_as_bytes)}))\n"
        )
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = REPO + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.setdefault("OMP_NUM_THREADS", "2")
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", prelude + textwrap.dedent(code)],
            capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd or REPO,
        )
    except subprocess.TimeoutExpired as e:  # a hang is a failure too
        raise AssertionError(f"the snippet hung (> {timeout} s):\n{code}") from e
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        raise AssertionError(
            f"the snippet was killed by {sig} (a crash in compiled code):\n{code}\n"
            f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
        )
    return proc


def assert_ok(proc: subprocess.CompletedProcess) -> None:
    """The snippet ran to its end (exit status 0); otherwise show what it printed."""
    assert proc.returncode == 0, f"exit status {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
