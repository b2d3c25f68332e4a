"""The inference planner: lowers a functional model's graph to a plan of kernel calls.

Importing this package installs :func:`klayers.inference.fusion.lower` as the engine's lowering
(:func:`klayers.engine.plan.install_lowering`); ``klayers`` imports it, so every model's
inference runs are planned. ``with klayers.inference.disabled(): ...`` runs models unplanned,
layer by layer (the reference the tests compare plans with); ``with
klayers.inference.unrecorded(): ...`` runs the plan step by step on every call, never replaying a
recorded call (``klayers.engine.replay``).
"""

from klayers.engine.plan import disabled, enabled, install_lowering, unrecorded
from klayers.inference.fusion import (
    DirectStep,
    FusedStep,
    MergeStep,
    PaddedPoolStep,
    ResidualStep,
    lower,
)

install_lowering(lower)

__all__ = ["DirectStep", "FusedStep", "MergeStep", "PaddedPoolStep", "ResidualStep", "disabled", "enabled", "lower", "unrecorded"]
