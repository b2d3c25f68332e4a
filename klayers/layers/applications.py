"""Layers that ``keras.applications`` defines for its own models, so that their files load.

tf-keras 2.21 and Keras 3.15 write them under their applications' modules
(``{"module": "keras.src.applications.convnext", "class_name": "LayerScale", ...}``, or
``tf_keras.src.applications.convnext``); klayers rebuilds them by class name. They are not
public layers of Keras (nor of klayers: not in ``klayers.layers.__all__``).
"""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from klayers.engine.base_layer import Layer
from klayers.layers._args import check_rate, is_training
from klayers.serialization import register_builtins


class LayerScale(Layer):
    """ConvNeXt's per-channel scale: ``x * gamma``, ``gamma`` of shape ``(projection_dim,)``
    initialized to ``init_values`` (a weight of the file).

    Input: any rank, last axis ``projection_dim``. Output: the input's shape.
    """

    def __init__(self, init_values: float, projection_dim: int, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(projection_dim, bool) or not isinstance(projection_dim, (int, np.integer)) or projection_dim < 1:
            raise ValueError(f"LayerScale {self.name}: projection_dim must be a positive integer. "
                             f"Received projection_dim={projection_dim!r}")
        self.init_values = float(init_values)
        self.projection_dim = int(projection_dim)

    def build(self, input_shape: Any) -> None:
        if input_shape[-1] is not None and input_shape[-1] != self.projection_dim:
            raise ValueError(f"LayerScale {self.name}: the input's last axis is {input_shape[-1]}, "
                             f"not projection_dim={self.projection_dim}.")
        self.gamma = self.add_weight("gamma", shape=(self.projection_dim,),
                                     initializer=lambda shape, dtype=None: np.full(shape, self.init_values, dtype))
        self.built = True

    def call(self, x: np.ndarray) -> np.ndarray:
        return x * self.gamma.value

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"init_values": self.init_values, "projection_dim": self.projection_dim})
        return config


class StochasticDepth(Layer):
    """ConvNeXt's stochastic depth (drop path): in training each sample's residual branch is
    dropped with probability ``drop_path_rate``; at inference the identity.

    Input: any rank. Output: the input.
    """

    def __init__(self, drop_path_rate: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.drop_path_rate = check_rate(drop_path_rate, f"StochasticDepth {self.name}")

    def call(self, x: np.ndarray, training: Any = None) -> np.ndarray:
        if is_training(training) and self.drop_path_rate > 0:
            raise NotImplementedError(f"StochasticDepth {self.name}: klayers runs it at inference only "
                                      "(training=False); training mode drops paths at random.")
        return x

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def _inference_identity(self) -> bool:
        return True

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"drop_path_rate": self.drop_path_rate})
        return config


class CustomScaleLayer(Layer):
    """InceptionResNetV2's residual scaling: ``inputs[0] + inputs[1] * scale``.

    Input: a list of two tensors of one shape. Output: that shape.
    """

    def __init__(self, scale: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs: Any) -> np.ndarray:
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(f"CustomScaleLayer {self.name}: expects a list of two tensors. Received {inputs!r:.80}")
        return inputs[0] + inputs[1] * np.asarray(self.scale, dtype=inputs[1].dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError(f"CustomScaleLayer {self.name}: expects a list of two tensors.")
        return tuple(input_shape[0])

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"scale": self.scale})
        return config


for _cls, _module in ((LayerScale, "convnext"), (StochasticDepth, "convnext"), (CustomScaleLayer, "inception_resnet_v2")):
    _cls._keras_module = f"keras.src.applications.{_module}"
    _cls._keras_registered_name = _cls.__name__

#: by class name, and by the name tf-keras registers CustomScaleLayer under (it writes that as
#: the class name of its .h5 configs)
APPLICATION_LAYERS = {"LayerScale": LayerScale, "StochasticDepth": StochasticDepth, "CustomScaleLayer": CustomScaleLayer,
                      "Custom>CustomScaleLayer": CustomScaleLayer}
__all__: List[str] = []  # keras.applications' own classes, not public layers
register_builtins("layer", APPLICATION_LAYERS, list(APPLICATION_LAYERS))
