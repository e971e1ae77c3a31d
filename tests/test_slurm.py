"""Sweeps and runs on a real Slurm cluster (`make slurm`: this machine as a single-node cluster).

- a sweep with `hydra/launcher=slurm` runs every trial as a job of a job array, with the array's
  parallelism, records each trial's job in its provenance and reports the queue, quietly;
- a trial requeued mid-epoch (`scontrol requeue`) and a trial signalled before its time limit
  continue in their own directory and end bit-identical to an uninterrupted run (BP, and DTP and
  L-DRL with their noise on); a trial past max_num_timeout is FAIL with its reason;
- the sweep process killed while its trials are queued and running: the same command again ends
  with n_trials finished trials, none run twice, none left RUNNING;
- `srun --ntasks-per-node=2` DDP equals one process on the doubled batch, with Slurm's ranks.

Every job runs one torch thread on one CPU; where no cluster answers, the tests are skipped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf

from tests.conftest import ROOT
from tests.test_ddp import assert_equals_one_process
from tests.test_resume import assert_same_weights, val_epochs

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

TINY = [
    "data=fake", "data.train_size=256", "data.val_size=64", "data.test_size=64",
    "data.batch_size=32", "net.hidden=[32,32]", "trainer.max_epochs=3", "threads=1",
    "trainer.enable_progress_bar=false", "callbacks.progress_bar=null", "seed=7",
]  # fmt: skip
SLURM = [
    "hydra/launcher=slurm", "hydra.launcher.gpus_per_node=0", "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=5",
]  # fmt: skip
TIMEOUT_S = 420


def train(*args: str, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def study_of(sweep_dir: Path) -> optuna.Study:
    storage = f"sqlite:///{sweep_dir}/optuna.db"
    return optuna.load_study(study_name=None, storage=storage)


def sweep(log_dir: Path, *extra: str) -> list[str]:
    return ["-m", "hparams_search=bp_random", *TINY, f"paths.log_dir={log_dir}", *extra]


def test_sweep_runs_every_trial_as_a_slurm_job(tmp_path):
    """3 trials, 2 at a time (n_jobs), each its own job: results in the study, the job in each
    trial's provenance, the queue on the console and nothing else."""
    result = train(*sweep(tmp_path, *SLURM, "hydra.sweeper.n_trials=3", "hydra.sweeper.n_jobs=2"))
    (db,) = tmp_path.rglob("optuna.db")
    trials = study_of(db.parent).get_trials()
    assert sorted(t.state.name for t in trials) == ["COMPLETE"] * 3
    run_dirs = [Path(t.user_attrs["run_dir"]) for t in trials]
    jobs = [OmegaConf.load(run / "provenance.yaml").slurm for run in run_dirs]
    assert len({j.job_id for j in jobs}) == 3
    assert {j.node for j in jobs} == {socket.gethostname()} and {j.requeue_count for j in jobs} == {
        0
    }
    assert max_running_at_once([j.job_id for j in jobs]) <= 2
    for run in run_dirs:  # the job's stdout and stderr next to the trial's own log
        assert {p.suffix for p in run.glob("slurm-*")} == {".out", ".err"}
    console = result.stdout + result.stderr
    assert "Slurm: " in result.stdout and " running, 0 requeued" in result.stdout
    assert "Bypassing sacct" not in console and "srun` command is available" not in console
    assert "trial 3/3" in result.stdout


def max_running_at_once(job_ids: list[str]) -> int:
    """The most of these jobs that ran at the same time, from Slurm's accounting (sacct)."""
    command = ["sacct", "-n", "-X", "-P", "-o", "Start,End", "-j", ",".join(job_ids)]
    rows = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    spans = [row.split("|") for row in rows]
    return max(sum(s <= start < e for s, e in spans) for start, _ in spans)


def test_requeued_and_timed_out_trials_end_bit_identical(tmp_path):
    """BP, DTP and L-DRL (σ = 0.1), each requeued by `scontrol requeue` in epoch 1 and, in a
    second job, signalled for its time limit in epoch 1: every trial resumes from epoch 0 in its
    own directory and ends with the weights of the uninterrupted run."""
    rules = "algo=bp,dtp,ldrl"
    train("-m", rules, *TINY, "ckpt_path=auto", f"hydra.sweep.dir={tmp_path / 'straight'}")
    interrupt = [
        "+callbacks.interrupt._target_=tests.interrupter.InterruptOnce",
        "+callbacks.interrupt.how=requeue,timeout",
        "+callbacks.interrupt.marker=${paths.output_dir}/interrupted",
    ]
    train("-m", rules, *TINY, *SLURM, "ckpt_path=auto", *interrupt,
          f"hydra.sweep.dir={tmp_path / 'slurm'}")  # fmt: skip
    for straight in (tmp_path / "straight").glob("[0-9]*"):
        algo = OmegaConf.load(straight / ".hydra" / "overrides.yaml")[0]
        interrupted = [
            run
            for run in (tmp_path / "slurm").glob("[0-9]*")
            if OmegaConf.load(run / ".hydra" / "overrides.yaml")[0] == algo
        ]
        assert len(interrupted) == 2, algo
        for run in interrupted:
            assert (run / "interrupted").read_text() == "1"
            assert OmegaConf.load(run / "provenance.yaml").slurm.requeue_count == 1
            assert "(epoch 0 done)" in (run / "train.log").read_text()
            assert_same_weights(straight, run)


def test_trial_past_max_num_timeout_fails_with_its_reason(tmp_path):
    every_time = [
        "+callbacks.interrupt._target_=tests.interrupter.InterruptOnce",
        "+callbacks.interrupt.how=timeout",
        "+callbacks.interrupt.times=9",
        "+callbacks.interrupt.marker=${paths.output_dir}/interrupted",
    ]
    train(*sweep(tmp_path, *SLURM, "hydra.launcher.max_num_timeout=1", *every_time,
                 "hydra.sweeper.n_trials=1", "hydra.sweeper.max_failure_rate=1.0"))  # fmt: skip
    (db,) = tmp_path.rglob("optuna.db")
    (trial,) = study_of(db.parent).get_trials()
    assert trial.state.name == "FAIL"
    assert "timed-out too many times" in trial.user_attrs["fail_reason"]
    run_dir = Path(trial.user_attrs["run_dir"])
    assert (run_dir / "interrupted").read_text() == "2"  # timed out, requeued, timed out again
    state = OmegaConf.load(run_dir / "run.yaml")
    assert state.state == "failed" and "timed-out too many times" in state.reason


def test_killed_sweep_restarts_without_running_a_trial_twice(tmp_path):
    """3 trials of 40 epochs on 2 CPUs: the sweep is killed once a trial has a checkpoint, while
    trials run and one is queued; the same command cancels the jobs and re-runs the trials."""
    trials = ["hydra.sweeper.n_trials=3", "hydra.sweeper.n_jobs=3", "trainer.max_epochs=40"]
    arguments = sweep(tmp_path, *SLURM, *trials)
    command = [sys.executable, "train.py", *arguments]
    sweeper = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(tmp_path.rglob("trial_*/checkpoints/last.ckpt")):
        time.sleep(0.5)
    os.kill(sweeper.pid, signal.SIGKILL)
    sweeper.wait()
    result = train(*arguments)
    assert "Cancelled " in result.stdout  # one line says so
    (db,) = tmp_path.rglob("optuna.db")
    study = study_of(db.parent).get_trials()
    complete = [Path(t.user_attrs["run_dir"]) for t in study if t.state.name == "COMPLETE"]
    assert sorted(run.name for run in complete) == ["trial_000", "trial_001", "trial_002"]
    assert not [t for t in study if t.state.name == "RUNNING"]
    for run in complete:  # each epoch once in the end, in its own directory
        assert val_epochs(run) == list(range(40))
        assert OmegaConf.load(run / "run.yaml").state == "finished"


def test_srun_ddp_equals_one_process_on_the_doubled_batch(tmp_path):
    """`srun --ntasks=2 python ... trainer=ddp_cpu`: Slurm starts both ranks (Lightning launches
    none); BP, DTP and the batch-standardised FW-DTP-BN (global-batch statistics)."""
    rules = ["bp", "dtp", "fwdtp_bn"]
    command = ["srun", "--ntasks=2", "--cpus-per-task=1", sys.executable,
               str(ROOT / "tests" / "test_ddp.py"), str(tmp_path), *rules]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "srun` command is available" not in result.stderr
    for algo in rules:
        assert_equals_one_process(algo, tmp_path, tmp_path / algo)


def test_pruned_sweep_through_slurm_reports_from_the_jobs(tmp_path):
    """The trials report their epochs into the study from their Slurm jobs, and the pruner
    stops those that lag: PRUNED, not FAIL (tests/test_pruning.py has the same sweep locally)."""
    from tests.test_pruning import LEARNS_OR_NOT, MEDIAN

    extra = [*LEARNS_OR_NOT, *MEDIAN, "hydra.sweeper.sampler.seed=3", "hydra.sweeper.n_trials=4"]
    train(*sweep(tmp_path, *SLURM, *extra))
    (db,) = tmp_path.rglob("optuna.db")
    trials = study_of(db.parent).get_trials()
    states = sorted(t.state.name for t in trials)
    assert "PRUNED" in states and "FAIL" not in states, states
    assert all(t.intermediate_values for t in trials)  # every job reported at least one epoch
    for trial in trials:
        slurm = OmegaConf.load(Path(trial.user_attrs["run_dir"]) / "provenance.yaml").slurm
        assert slurm.job_id  # it ran as a Slurm job
