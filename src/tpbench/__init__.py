"""tpbench: biologically-motivated learning rules next to backprop, on the same data and nets."""

__version__ = "0.1.0"

from tpbench.conversion import convert

__all__ = ["convert"]
