"""Recurrent layers, one module per concern:

- :mod:`.base`: :class:`RNN`, a cell run over the time axis (states, masks, initial and kept
  states, ``go_backwards``, ``return_state``);
- :mod:`.cells`: :class:`SimpleRNNCell`, :class:`GRUCell`, :class:`LSTMCell`;
- :mod:`.cell_layers`: :class:`SimpleRNN`, :class:`GRU`, :class:`LSTM`;
- :mod:`.cudnn`: :class:`CuDNNGRU`, :class:`CuDNNLSTM`;
- :mod:`.stacked`: :class:`StackedRNNCells`;
- :mod:`.conv_lstm`: ConvLSTM1D/2D/3D and their cells;
- :mod:`._common`: state-size nests and how an RNN drives any cell.

The maths lives in :mod:`klayers.ops` (``recurrent_steps``, ``recurrent``, ``recurrent_conv``,
``convlstm_loop``).
"""

from klayers.layers.recurrent.base import RNN
from klayers.layers.recurrent.cell_layers import GRU, LSTM, SimpleRNN
from klayers.layers.recurrent.cells import GRUCell, LSTMCell, SimpleRNNCell
from klayers.layers.recurrent.conv_lstm import (
    ConvLSTM1D,
    ConvLSTM1DCell,
    ConvLSTM2D,
    ConvLSTM2DCell,
    ConvLSTM3D,
    ConvLSTM3DCell,
)
from klayers.layers.recurrent.cudnn import CuDNNGRU, CuDNNLSTM
from klayers.layers.recurrent.stacked import StackedRNNCells
from klayers.serialization import register_builtins

__all__ = [
    "RNN", "SimpleRNN", "SimpleRNNCell", "GRU", "GRUCell", "LSTM", "LSTMCell",
    "StackedRNNCells", "CuDNNGRU", "CuDNNLSTM",
    "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "ConvLSTM1DCell", "ConvLSTM2DCell", "ConvLSTM3DCell",
]

register_builtins("layer", globals(), __all__)
