"""What Keras 3.15.1 writes in layer configs, as data (``keras3_keys.json`` beside this module).

* ``KERAS3_CONFIG_KEYS``: the config keys of each Keras 3 layer class (``sorted(cls(...).get_config())``
  of a default instance). The ``.keras`` writer drops a Keras 2 key missing here only when it is
  known to be harmless, and refuses otherwise.
* ``KERAS3_UNSET_VALUES``: the value Keras 3 writes for an option that is not used.
* ``KERAS3_BUILT_AT_INIT``: classes built in their constructor (``Layer._build_at_init``, or
  ``built = True``): their ``get_build_config()`` is None, so Keras 3 writes no ``build_config``.

Regenerate the key sets by instantiating each class of ``klayers.layers.__all__`` in Keras 3 with
minimal arguments and printing ``sorted(layer.get_config())`` (see the issue 8 report); the
ConvLSTM1D/2D/3D key sets are those of the Keras 3.15.1 configs recorded in
``conformance/references/keras3/recurrent_conv.json``.
"""

import json
import os
from typing import Any, Dict, FrozenSet

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras3_keys.json")) as _f:
    _DATA = json.load(_f)

KERAS3_CONFIG_KEYS: Dict[str, FrozenSet[str]] = {c: frozenset(keys) for c, keys in _DATA["config_keys"].items()}
KERAS3_UNSET_VALUES: Dict[str, Any] = dict(_DATA["unset_values"])
KERAS3_BUILT_AT_INIT: FrozenSet[str] = frozenset(_DATA["built_at_init"])
