"""Where a model differs from Keras and where its time goes.

:func:`verify_layers` runs a model file in the Keras that wrote it and in klayers on the same
inputs and compares every layer's output (``klayers verify MODEL --per-layer``);
:func:`profile_model` times every step of a model's inference plan (``klayers profile MODEL``).
Both return plain dicts (the JSON the command line writes) and print nothing.
"""

from klayers.inspect.profile import profile_model
from klayers.inspect.verify import verify_layers

__all__ = ["profile_model", "verify_layers"]
