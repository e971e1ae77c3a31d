"""Auxiliary-output SDTP (Bartunov et al. 2018, Algorithm 2).

Parts (conf/algo/aosdtp.yaml; aosdtp_alt.yaml swaps the schedule):
- top target `aux_label`: output [o, z], z = σ(R·h_{L-1}) with R fixed random (512 units in the
  paper); t_L = [onehot(y), z], so t_{L-1} = h_{L-1} − G_L(o, z) + G_L(onehot(y), z);
- feedback `learned_inverse`; inverse loss `denoising`; schedule `parallel` or `alternating`.
"""

from tpbench.algorithms.target_propagation.engine import TargetPropagation


class AOSDTP(TargetPropagation):
    rule_name = "aosdtp"
