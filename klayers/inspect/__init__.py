"""Where a model differs from Keras and where its time goes.

:func:`verify_layers` runs a model file in the Keras that wrote it and in klayers on the same
inputs and compares every layer's output (``klayers verify MODEL --per-layer``). It returns a
plain dict (the JSON the command line writes) and prints nothing.
"""

from klayers.inspect.verify import verify_layers

__all__ = ["verify_layers"]
