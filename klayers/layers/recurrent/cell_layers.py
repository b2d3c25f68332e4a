"""SimpleRNN, GRU and LSTM: an RNN that owns one built-in cell and forwards its arguments."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from klayers import regularizers
from klayers.layers.recurrent._common import checked_from_config
from klayers.layers.recurrent.base import RNN
from klayers.layers.recurrent.cells import GRUCell, LSTMCell, SimpleRNNCell


class _CellLayer(RNN):
    """A layer that owns one built-in cell and forwards its arguments (SimpleRNN, GRU, LSTM)."""

    _cell_class: type = SimpleRNNCell
    _cell_name = "simple_rnn_cell"
    _cell_keys: Tuple[str, ...] = ()

    def __init__(self, units: int, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 time_major: bool = False, activity_regularizer: Any = None, **kwargs: Any):
        cell_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in self._cell_keys}
        seed = kwargs.pop("seed", None)
        kwargs.pop("enable_caching_device", None)
        kwargs.pop("use_cudnn", None)
        cell = self._cell_class(units, name=self._cell_name, dtype=kwargs.get("dtype"),
                                trainable=kwargs.get("trainable", True), seed=seed, **cell_kwargs)
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll, time_major=time_major,
                         **kwargs)
        self.activity_regularizer = regularizers.get(activity_regularizer)

    def __getattr__(self, name: str) -> Any:
        if name in type(self)._cell_keys or name in ("units",):
            cell = self.__dict__.get("cell")
            if cell is not None:
                return getattr(cell, name)
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def get_config(self) -> Dict[str, Any]:
        config = self._base_rnn_config()
        cell_config = self.cell.get_config()
        for k in ("name", "trainable", "dtype"):
            cell_config.pop(k, None)
        # tf-keras puts activity_regularizer among the cell's keys, after bias_regularizer
        ordered: Dict[str, Any] = {}
        for k, v in cell_config.items():
            ordered[k] = v
            if k == "bias_regularizer":
                ordered["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        config.update(ordered)
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> RNN:
        return checked_from_config(cls, lambda: cls(**config))


_COMMON = ("activation", "use_bias", "kernel_initializer", "recurrent_initializer", "bias_initializer",
           "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "kernel_constraint",
           "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout")


class SimpleRNN(_CellLayer):
    """Fully-connected RNN (:class:`SimpleRNNCell`) over a sequence. Weights: ``kernel``,
    ``recurrent_kernel``, ``bias``. Example: ``SimpleRNN(4)(np.ones((2, 5, 3), "float32"))`` is ``(2, 4)``."""

    _cell_class = SimpleRNNCell
    _cell_name = "simple_rnn_cell"
    _cell_keys = _COMMON

    def __init__(self, units: int, activation: Any = "tanh", **kwargs: Any):
        kwargs.pop("implementation", None)
        super().__init__(units, activation=activation, **kwargs)


class GRU(_CellLayer):
    """Gated recurrent unit over a sequence (:class:`GRUCell`; ``reset_after`` True by default,
    with a ``(2, 3*units)`` bias)."""

    _cell_class = GRUCell
    _cell_name = "gru_cell"
    _cell_keys = _COMMON + ("recurrent_activation", "reset_after", "implementation")

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 reset_after: bool = True, **kwargs: Any):
        kwargs.setdefault("implementation", 2)
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         reset_after=reset_after, **kwargs)


class LSTM(_CellLayer):
    """Long short-term memory over a sequence (:class:`LSTMCell`); states ``[h, c]``."""

    _cell_class = LSTMCell
    _cell_name = "lstm_cell"
    _cell_keys = _COMMON + ("recurrent_activation", "unit_forget_bias", "implementation")

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 unit_forget_bias: bool = True, **kwargs: Any):
        kwargs.setdefault("implementation", 2)
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation,
                         unit_forget_bias=unit_forget_bias, **kwargs)

