"""Difference target propagation (Lee et al. 2015), as run by Bartunov et al. 2018.

Parts (conf/algo/dtp.yaml; dtp_alt.yaml swaps the schedule):
- top target `gradient_step`: t_{L-1} = h_{L-1} − α ∂ℓ/∂h_{L-1}, last layer on the task loss;
- feedback `learned_inverse`: t_{l-1} = h_{l-1} + G_l(t_l) − G_l(h_l), G_l(h) = σ(V_l h + c_l);
- inverse loss `noise_preserving`: ‖G_l(F_l(h_{l-1} + ε)) − (h_{l-1} + ε)‖²;
- schedule `parallel` (Bartunov's "DTP parallel") or `alternating` ("DTP alternating").
"""

from tpbench.algorithms.target_propagation.engine import TargetPropagation


class DTP(TargetPropagation):
    rule_name = "dtp"
