"""Simplified DTP (Bartunov et al. 2018, Algorithm 1): no gradient anywhere.

Parts (conf/algo/sdtp.yaml; sdtp_alt.yaml swaps the schedule):
- top target `label`: output o = softmax(h_L), t_L = onehot(y) (β = 1; β < 1 damps it), last
  layer on the task loss; t_{L-1} by a difference target through G_L;
- feedback `learned_inverse` (difference targets down to layer 1);
- inverse loss `denoising`: ‖h_{l-1} − G_l(F_l(h_{l-1} + ε))‖²;
- schedule `parallel` or `alternating`.
"""

from tpbench.algorithms.target_propagation.engine import TargetPropagation


class SDTP(TargetPropagation):
    rule_name = "sdtp"
