"""fastbp: backpropagation and mini-batch SGD for fully-connected networks, compiled.

The native API is :class:`fastbp.Network`; ``fastbp.network`` is a drop-in
for the ``network.py`` of Michael Nielsen's *Neural Networks and Deep
Learning*.
"""
from ._training import NetworkBusyError
from .gradcheck import gradcheck
from .io import load
from .native import Network

__all__ = ["Network", "NetworkBusyError", "gradcheck", "load"]
__version__ = "0.1.0"
