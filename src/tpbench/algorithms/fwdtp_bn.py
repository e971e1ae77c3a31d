"""FW-DTP with batch standardisation, "FW-DTP-BN" (Shibuya et al. 2023; the authors' code,
`--algorithm=FWDTP-BN --forward_last_activation=linear-BN`, code/Main.py:218-257).

Parts (conf/algo/fwdtp_bn.yaml): FW-DTP's (fwdtp.py) with
- feedback `fixed_random`, activation `tanh_bn`: G_l(h) = BN(tanh(B_l h)), and
  `standardize_targets`: t_{l-1} = BN(h_{l-1} + G_l(t_l) − G_l(h_l));
- the net's hidden activations standardised, BN(tanh(a)), and its logits, BN(a): the rule sets
  them (as the authors' `--algorithm` flag does), on any tanh net.
BN(v) = (v − mean_n v) / (std_n v + 1e-12) over the batch, no parameters (nets/standardize.py).
"""

from tpbench.algorithms.fwdtp import FWDTP
from tpbench.nets.activations import standardize_activations


class FWDTPBN(FWDTP):
    rule_name = "fwdtp_bn"

    def __init__(self, net, *args, **kwargs):
        standardize_activations(net, self.rule_name, logits=True)  # h_l = BN(tanh(W h)), BN(logits)
        super().__init__(net, *args, **kwargs)
