"""Managing runs and sweeps: everything that lies in a run or sweep directory and acts on it.

- `state`: a run's `run.yaml` (running, finished, failed, interrupted);
- `checkpoints`, `resume`: last.ckpt after every epoch, and continuing from it;
- `random_state`: the random generators' states every checkpoint carries (exact resume);
- `lock`: one process at a time in a run directory;
- `relaunch`: the command that continues a run (`tpbench resume`, `tpbench continue`);
- `provenance`: what produced a run;
- `sweeper`, `sweep_progress`: resumable Optuna sweeps and the line they print per trial;
- `slurm`: the Slurm job a run is in, and a sweep's jobs in the queue;
- `reader`: runs and sweeps as they lie on disk, for `tpbench report`.
"""
