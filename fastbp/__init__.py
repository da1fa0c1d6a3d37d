"""fastbp: backpropagation and mini-batch SGD for fully-connected networks, compiled.

The native API is :class:`fastbp.Network`; ``fastbp.network`` is a drop-in
for the ``network.py`` of Michael Nielsen's *Neural Networks and Deep
Learning*.
"""
from ._training import NetworkBusyError
from .native import Network
from .io import load
from .gradcheck import gradcheck

__all__ = ["Network", "NetworkBusyError"]
__version__ = "0.1.0"
