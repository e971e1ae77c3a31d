"""DTP with the difference reconstruction loss (Meulemans et al. 2020).

Parts (conf/algo/drl.yaml):
- top target `output_step`: t_L = h_L − β(softmax(h_L) − onehot(y)), every layer (the last too)
  on ½‖h_l − t_l‖²;
- feedback `learned_inverse` (difference targets);
- inverse loss `drl`: corrupt h_{l-1} by ε, send it to the output, difference-propagate it back
  down to l−1 with the current G's as r_{l-1}; only G_l learns from (1/σ²)‖h_{l-1} + ε − r_{l-1}‖²;
- schedule `parallel`, one feedback step per batch.
"""

from tpbench.algorithms.target_propagation.engine import TargetPropagation


class DRL(TargetPropagation):
    rule_name = "drl"
