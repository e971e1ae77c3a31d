"""Diagnostics: Lightning callbacks that measure, layer by layer, how close a rule is to backprop.

Enable them all with `callbacks=diagnostics`, or one by one (`callbacks=update_alignment`, ...).
"""

from tpbench.diagnostics.base import DiagnosticCallback
from tpbench.diagnostics.jacobian import JacobianConditions
from tpbench.diagnostics.reconstruction import Reconstruction
from tpbench.diagnostics.update_alignment import UpdateAlignment
from tpbench.diagnostics.weight_alignment import WeightAlignment

__all__ = [
    "DiagnosticCallback",
    "JacobianConditions",
    "Reconstruction",
    "UpdateAlignment",
    "WeightAlignment",
]
