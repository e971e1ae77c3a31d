"""Nets whose layers own a forward pathway and build, on request, the feedback pathways."""

from tpbench.nets.layers import Dense, Layer
from tpbench.nets.network import Network

__all__ = ["Dense", "Layer", "Network"]
