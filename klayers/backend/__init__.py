"""The Keras backend API (``from klayers import backend as K``) over NumPy.

The lowest floor of the house: global configuration the engine reads (``floatx``,
``epsilon``, ``image_data_format``), generated-name counters and seeded random draws
(:mod:`klayers.backend.config`), and NumPy versions of the element-wise and shape helpers of
``tf_keras.backend`` (:mod:`klayers.backend.numpy_ops`). Nothing here imports another part of
klayers.
"""

from klayers.backend.config import *  # noqa: F401,F403
from klayers.backend.config import __all__ as _config_all
from klayers.backend.numpy_ops import *  # noqa: F401,F403
from klayers.backend.numpy_ops import __all__ as _ops_all

__all__ = sorted(set(_config_all) | set(_ops_all))
