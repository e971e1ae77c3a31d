"""The train.py command that continues an existing run in its own directory.

`tpbench resume RUN_DIR [OVERRIDES]` (and `tpbench continue SWEEP_DIR`, which resumes a sweep's
best trial) re-runs train.py with the run's recorded overrides (`.hydra/overrides.yaml`),
`hydra.run.dir=RUN_DIR` and `ckpt_path=auto`: training continues from `checkpoints/last.ckpt`,
`csv/metrics.csv` continues, and the run's state ends as finished, failed or interrupted.

Only overrides that leave the trained model and its data as they are may be added
(`RESUMABLE`: more epochs, threads, loggers, the progress bar, where the data lie); anything else
is one ConfigError sentence before a file of the run is touched, as is a run that is still
running, a directory that is not a run, fewer epochs than the run has done, or a finished run
without more epochs.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from tpbench.errors import ConfigError, InputError
from tpbench.runs.resume import check_budget
from tpbench.runs.state import read_state

# override keys (and their sub-keys) that leave a run's results as they are: a restarted sweep
# may change them, and so may a resume, which may also train for more epochs
RESULT_NEUTRAL = (
    "threads",
    "test",
    "logger",
    "trainer.enable_progress_bar",
    "trainer.log_every_n_steps",
    "callbacks.progress_bar",
    "data.data_dir",
    "paths.data_dir",
)
RESUMABLE = ("trainer.max_epochs", *RESULT_NEUTRAL)


def key(override: str) -> str:
    """`a.b` of `+a.b=1`, `~a.b` or `a.b=1`."""
    return override.split("=", 1)[0].lstrip("+~")


def resumable(name: str) -> bool:
    return any(name == k or name.startswith(k + ".") for k in RESUMABLE)


def results_of(command: list[str]) -> list[str]:
    """The overrides of a command that can change its results (not threads, loggers, ...)."""
    return sorted(
        o
        for o in command
        if not any(key(o) == k or key(o).startswith(k + ".") for k in RESULT_NEUTRAL)
    )


def quote(value: str) -> str:
    """A string as a quoted Hydra override value (paths may hold characters the grammar uses)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def recorded_overrides(run_dir: Path) -> list[str]:
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        raise InputError(
            f"{run_dir} is not a tpbench run directory (no .hydra/overrides.yaml); pass the "
            "directory of a run, e.g. logs/train/runs/<date_time> or a sweep's trial_<k>."
        )
    return [str(o) for o in OmegaConf.load(path)]


def resume_arguments(run_dir: Path, overrides: list[str]) -> tuple[list[str], Path]:
    """(train.py arguments that continue the run in run_dir, the directory to run them in)."""
    run_dir = run_dir.resolve()
    previous = recorded_overrides(run_dir)
    state = read_state(run_dir)
    if state is not None and state[0] == "running":
        raise InputError(f"{run_dir} is still running; resume it once it has stopped.")
    recorded = {key(o): o for o in previous}
    for override in overrides:
        if "=" not in override and not override.startswith("~"):
            raise ConfigError(f"{override} is not an override; write key=value, e.g. threads=2.")
        if recorded.get(key(override)) != override and not resumable(key(override)):
            raise ConfigError(
                f"{override} would change the model or data of {run_dir.name}, which resumes "
                f"with its recorded config; a resume may change only {', '.join(RESUMABLE)} "
                "(start a new run for anything else)."
            )
    check_budget(
        run_dir, _max_epochs(run_dir, overrides), state is not None and state[0] == "finished"
    )
    # a sweep's trial continues as a single run: its search space is no part of its config
    replaced = {key(o) for o in overrides} | {"ckpt_path", "hparams_search"}
    kept = [o for o in previous if key(o) not in replaced]
    cwd = Path(OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra.runtime.cwd)
    return [*kept, *overrides, f"hydra.run.dir={quote(str(run_dir))}", "ckpt_path=auto"], cwd


def _max_epochs(run_dir: Path, overrides: list[str]) -> int | None:
    """trainer.max_epochs as the resumed run will have it: given, or as recorded."""
    given = [o.split("=", 1)[1] for o in overrides if key(o) == "trainer.max_epochs"]
    if given:
        return int(given[-1]) if given[-1].lstrip("-").isdigit() else None
    recorded = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    return OmegaConf.select(recorded, "trainer.max_epochs")


def _best_results(sweep_dir: Path):
    results = sweep_dir / "optimization_results.yaml"
    if not results.is_file() or "best_run_dir" not in (found := OmegaConf.load(results)):
        raise InputError(
            f"{sweep_dir} has no best trial ({results.name} names none): pass a sweep that has "
            "ended with a complete trial."
        )
    return found


def best_trial_dir(sweep_dir: Path) -> Path:
    """The run directory of a finished sweep's best trial."""
    return Path(_best_results(sweep_dir).best_run_dir)


def best_overrides(sweep_dir: Path) -> list[str]:
    """The best trial's searched values as overrides (`key=value`, the sweep's own spelling)."""
    params = OmegaConf.to_container(_best_results(sweep_dir).best_params)
    return [f"{k}={str(v).replace(' ', '')}" for k, v in params.items()]


def check_arguments(arguments: list[str], cwd: Path) -> None:
    """Compose the config the relaunched run will have and run the start-up checks on it, so a
    mistake is told before train.py writes into the run directory."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from tpbench.checks import check_config

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(cwd / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=arguments, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    check_config(cfg)
