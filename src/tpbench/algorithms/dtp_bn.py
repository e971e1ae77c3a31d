"""DTP with batch standardisation, "DTP-BN" (Shibuya et al. 2023; the authors' code,
`--algorithm=DTP-BN`, code/Main.py:218-257).

Parts (conf/algo/dtp_bn.yaml): the FW-DTP authors' DTP (dtp.py parts with an output-step top
target) with
- feedback `learned_inverse`, activation `tanh_bn`: G_l(h) = BN(tanh(V_l h)), and
  `standardize_targets`: t_{l-1} = BN(h_{l-1} + G_l(t_l) − G_l(h_l));
- the net's hidden activations standardised, BN(tanh(a)): the rule sets them (as the authors'
  `--algorithm` flag does); the logits stay linear (code/Main.py:191 keeps DTP-BN's last layer).
"""

from tpbench.algorithms.target_propagation.engine import TargetPropagation
from tpbench.nets.activations import standardize_activations


class DTPBN(TargetPropagation):
    rule_name = "dtp_bn"

    def __init__(self, net, *args, **kwargs):
        standardize_activations(net, self.rule_name, logits=False)  # h_l = BN(tanh(W h))
        super().__init__(net, *args, **kwargs)
