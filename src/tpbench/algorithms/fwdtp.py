"""Fixed-weight difference target propagation (Shibuya et al. 2023).

Parts (conf/algo/fwdtp.yaml):
- top target `output_step`: t_L = h_L − β(softmax(h_L) − onehot(y)), every layer (the last too)
  on ½‖h_l − t_l‖²;
- feedback `fixed_random`: t_{l-1} = h_{l-1} + G_l(t_l) − G_l(h_l) with G_l(h) = σ(B_l h), B_l
  fixed random (the poster: U(−0.01, 0.01)), no bias;
- no inverse loss and no feedback optimizer: the feedback is never trained;
- schedule `parallel` (every batch trains the forward weights).
"""

from tpbench.algorithms.target_propagation.engine import TargetPropagation
from tpbench.algorithms.target_propagation.feedback_maps import FixedRandom
from tpbench.errors import ConfigError


class FWDTP(TargetPropagation):
    rule_name = "fwdtp"

    def __init__(self, *args, feedback, **kwargs):
        if not isinstance(feedback, FixedRandom):
            raise ConfigError(
                "algo 'fwdtp' is DTP with fixed random feedback; keep algo/feedback=fixed_random "
                "(for learned inverses use algo=dtp with algo/top_target=output_step)."
            )
        super().__init__(*args, feedback=feedback, **kwargs)
