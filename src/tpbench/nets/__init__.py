"""Nets whose layers own a forward pathway and build, on request, the feedback pathways."""

from tpbench.nets.layers import Dense, Layer
from tpbench.nets.network import Network
from tpbench.nets.pooling import MaxPool
from tpbench.nets.spatial import Conv2d, LocallyConnected2d

__all__ = ["Conv2d", "Dense", "Layer", "LocallyConnected2d", "MaxPool", "Network"]
