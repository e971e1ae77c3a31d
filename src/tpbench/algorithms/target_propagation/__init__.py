"""The target-propagation family, built from named parts (one Hydra config group each).

A rule (tpbench/algorithms/{tp,dtp,sdtp,aosdtp,drl,ldrl,fwdtp}.py) is the engine plus four parts:
- top target (`top_targets.py`, `algo/top_target=`): where the first target comes from
  (Lee's α gradient step on h_{L-1}, SDTP's label target, AO-SDTP's auxiliary label target,
  the β output step) and what the last layer is trained on;
- feedback map (`feedback_maps.py`, `algo/feedback=`): G_l, a learned inverse or fixed random
  weights, how a target step goes down through it (difference or vanilla), and its hybrid with
  the exact linearisation;
- inverse loss (`inverse_losses.py`, `algo/inverse_loss=`): how a learned G_l is trained
  (noise-preserving, de-noising, DRL, L-DRL; `none` for fixed feedback);
- schedule (`schedules.py`, `algo/schedule=`): which epochs train feedback and forward weights
  (parallel, alternating, feedback-only warm-up) and K_l feedback steps per batch.
The engine (`engine.py`) runs a step and has no string branches: it asks the parts.
"""
