"""Vanilla target propagation (LeCun 1986; Lee et al. 2015): t_{l-1} = G_l(t_l).

Parts (conf/algo/tp.yaml): top target `gradient_step` (t_{L-1} = h_{L-1} − α ∂ℓ/∂h_{L-1}),
feedback `learned_inverse` with `difference: false`, inverse loss `noise_preserving`,
schedule `parallel`. Expected to fail on deep nets (FW-DTP poster: 78.99 % MNIST test error).
"""

from tpbench.algorithms.target_propagation.engine import TargetPropagation


class TP(TargetPropagation):
    rule_name = "tp"
