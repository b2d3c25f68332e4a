"""The ConvLSTM layers under their former module name; they live in
:mod:`klayers.layers.recurrent.conv_lstm`."""

from klayers.layers.recurrent.conv_lstm import (  # noqa: F401  (handed on)
    ConvLSTM1D,
    ConvLSTM1DCell,
    ConvLSTM2D,
    ConvLSTM2DCell,
    ConvLSTM3D,
    ConvLSTM3DCell,
    _ConvLSTM,
    _ConvLSTMCell,
)

__all__ = ["ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "ConvLSTM1DCell", "ConvLSTM2DCell", "ConvLSTM3DCell"]
