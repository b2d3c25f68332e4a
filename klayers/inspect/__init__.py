"""Where a model differs from Keras and where its time goes.

:func:`verify_layers` runs a model file in the Keras that wrote it and in klayers on the same
inputs and compares every layer's output (``klayers verify MODEL --per-layer``);
:func:`profile` times every step of a model's inference plan on given inputs (``klayers profile
MODEL``; :func:`profile_model` takes the command line's options too). They return plain dicts
(the JSON the command line writes) and print nothing.

The name ``klayers.inspect.profile`` is the function; its module's other helpers
(``format_report``, ``plot_report`` ...) are imported from the module by its full name:
``from klayers.inspect.profile import format_report``.
"""

from klayers.inspect.profile import profile, profile_model
from klayers.inspect.verify import verify_layers

__all__ = ["profile", "profile_model", "verify_layers"]
