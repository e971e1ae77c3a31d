"""DTP with the local difference reconstruction loss (Ernoult et al. 2022, "Towards Scaling
Difference Target Propagation by Learning Backprop Targets").

Parts (conf/algo/ldrl.yaml):
- top target `output_step`: t_L = h_L − β(softmax(h_L) − onehot(y)), every layer (the last too)
  on ½‖h_l − t_l‖²;
- feedback `learned_inverse` (difference targets);
- inverse loss `ldrl`: −2 εᵀ(G_l(F_l(h+ε)) − G_l(F_l(h))) + ‖G_l(F_l(h)+η) − G_l(F_l(h))‖²,
  ε, η ~ N(0, σ_l²);
- schedule `parallel` with K_l feedback steps per batch, then one forward step.
"""

from tpbench.algorithms.target_propagation.engine import TargetPropagation


class LDRL(TargetPropagation):
    rule_name = "ldrl"
