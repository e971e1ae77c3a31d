"""A sweep trial's side of multi-fidelity search: its objective after every epoch, into the study.

The sweeper starts each trial with `+optuna_trial.{storage,study,number}=...`. `ReportToStudy`
then reports the optimized metric (e.g. val/err_best) after each epoch that trained the forward
weights, at step = the number of such epochs so far (feedback-only warm-up epochs report nothing),
and asks the study's pruner, which the sweeper keeps in the study's user attrs (`PRUNER`), whether
to stop. A pruned trial raises `Pruned`: the run ends as `pruned` in its run.yaml and the sweeper
records the trial as PRUNED with its last reported value.

A resumed trial (requeued job, re-run after a killed sweep) reports only the steps its trial does
not hold yet, so no step is reported, or judged by the pruner, twice; a trial that is no longer
RUNNING in the study (`tpbench resume` of a finished trial) reports nothing.
"""

from __future__ import annotations

import logging
import math

import lightning as L
from omegaconf import DictConfig, OmegaConf

from tpbench.errors import TpbenchError
from tpbench.runs.sweep_progress import show

log = logging.getLogger(__name__)

PRUNER = "pruner"  # study user attr: the sweep's pruner config (a `_target_` dict)


class Pruned(TpbenchError):
    """The study's pruner stopped this trial: its objective lags the other trials' at this step."""


def pruner_from(config: dict | None):
    """The pruner a `_target_` dict describes; optuna's NopPruner for none."""
    import optuna
    from hydra.utils import instantiate

    return instantiate(config) if config else optuna.pruners.NopPruner()


class ReportToStudy(L.Callback):
    """Report the objective after every forward-training epoch; raise `Pruned` when told to."""

    def __init__(self, storage: str, study: str, number: int, metric: str):
        self.storage, self.study_name, self.number, self.metric = storage, study, number, metric
        self.trial = None  # optuna.Trial, opened at the first report (rank 0 only)
        self.opened = False  # (a trial finished in its study opens as None: nothing to report)
        self.reported: set[int] = set()  # steps the trial holds (a resumed trial's earlier ones)

    def _open(self):
        import optuna

        from tpbench.runs.storage import make_storage

        storage = make_storage(self.storage)
        study = optuna.load_study(study_name=self.study_name, storage=storage)
        study.pruner = pruner_from(study.user_attrs.get(PRUNER))
        trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, self.number)
        frozen = storage.get_trial(trial_id)
        if frozen.state != optuna.trial.TrialState.RUNNING:
            log.info("Trial %d is finished in its study: reporting nothing", self.number)
            return None
        self.reported = set(frozen.intermediate_values)
        return optuna.Trial(study, trial_id)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not pl_module.trains_forward_weights():
            return
        step = pl_module.forward_epochs(trainer.current_epoch)
        verdict = None
        if trainer.is_global_zero:  # rank 0 reports and decides
            verdict = self._report(trainer.callback_metrics.get(self.metric), step)
        verdict = trainer.strategy.broadcast(verdict, src=0)  # every DDP rank stops with it
        if verdict:
            raise Pruned(verdict)

    def _report(self, value, step: int) -> str | None:
        """Report the step's value (once); the pruner's verdict as a sentence, or None."""
        if value is None or not math.isfinite(float(value)):
            return None  # (a diverged run fails on its own; the sweeper records why)
        if not self.opened:
            self.trial, self.opened = self._open(), True
        if self.trial is None or step in self.reported:
            return None
        self.trial.report(float(value), step)
        self.reported.add(step)
        if not self.trial.should_prune():
            return None
        pruner = type(self.trial.study.pruner).__name__
        return (
            f"after {step} training epoch{'s' * (step > 1)}: {self.metric} "
            f"{show(self.metric, float(value))} lags the other trials ({pruner})"
        )


def reporter(cfg: DictConfig) -> ReportToStudy | None:
    """The callback a sweep trial's config asks for (`optuna_trial`), else None."""
    trial = cfg.get("optuna_trial")
    if not trial:
        return None
    trial = OmegaConf.to_container(trial, resolve=True)
    metric = str(cfg.get("optimized_metric"))
    return ReportToStudy(str(trial["storage"]), str(trial["study"]), int(trial["number"]), metric)
