"""Compatibility alias of :mod:`klayers.ops.threads` (thread control moved into the ops).

Kept only while ``klayers/layers/recurrent_conv.py`` still imports ``get_num_threads`` from
here; delete this module once that import is gone (new code imports ``klayers.ops.threads``,
or the public ``klayers.set_num_threads`` / ``get_num_threads`` / ``num_threads``).
"""

from klayers.ops.threads import (  # noqa: F401
    blas_single_threaded,
    get_num_threads,
    num_threads,
    set_num_threads,
)
