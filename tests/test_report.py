"""`tpbench report` on a hand-made sweep: files written, paper numbers, states, partial runs."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf

from tests.conftest import CONF, compose_train
from tpbench.cli import main
from tpbench.errors import InputError
from tpbench.paper_results import MEASURED_HERE, fwdtp_table
from tpbench.report import group, report
from tpbench.report_grid import cells, panel_title
from tpbench.runs.reader import label_order, read_runs, rule_label
from tpbench.runs.storage import FAIL_REASON, RUN_DIR

FIELDS = ["epoch", "step", "train/err", "val/err", "val/err_best", "test/err"]


def write_run(
    run_dir: Path,
    algo: str,
    errors: list[float],
    log: str,
    test: float | None,
    net: str = "bartunov_mnist_fc",
) -> None:
    """A run as train.py leaves it: .hydra/{config,hydra}.yaml, csv/metrics.csv, train.log."""
    schedule = {"schedule": "alternating" if algo.endswith("_alt") else "parallel"}
    cfg = {"algo": {"_target_": "x.Rule", **(schedule if "dtp" in algo else {})},
           "logger": {"csv": {"_target_": "lightning.pytorch.loggers.CSVLogger"}}}  # fmt: skip
    choices = {"data": "mnist", "net": net, "algo": algo}
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(cfg), run_dir / ".hydra" / "config.yaml")
    OmegaConf.save({"hydra": {"runtime": {"choices": choices}}}, run_dir / ".hydra" / "hydra.yaml")
    (run_dir / "csv").mkdir()
    with (run_dir / "csv" / "metrics.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=FIELDS)
        writer.writeheader()
        for epoch, err in enumerate(errors):
            writer.writerow({"epoch": epoch, "step": epoch, "val/err": err, "val/err_best": err})
            writer.writerow({"epoch": epoch, "step": epoch, "train/err": err / 2})
        if test is not None:
            writer.writerow({"epoch": len(errors), "step": 99, "test/err": test})
    (run_dir / "train.log").write_text(log)


@pytest.fixture
def sweep(tmp_path) -> Path:
    done = "[tpbench][INFO] - Done in 1.0s"
    write_run(tmp_path / "bp_0", "bp", [0.3, 0.02], done, 0.021)
    write_run(tmp_path / "bp_1", "bp", [0.4, 0.05], done, 0.06)
    write_run(tmp_path / "dtp_0", "dtp_alt", [0.5, 0.03], done, 0.035)
    write_run(tmp_path / "dtp_1", "dtp_alt", [0.6], "[ERROR] - Run diverged: loss nan", None)
    write_run(tmp_path / "dtp_2", "dtp_alt", [0.7], "still training", None)  # a partial sweep
    return tmp_path


def test_report_writes_figures_and_a_table_next_to_the_paper(sweep):
    paths = report(sweep, wandb=False)
    assert [p.name for p in paths] == ["sensitivity.png", "curves.png", "report.md"]
    assert all(p.stat().st_size > 1000 for p in paths[:2])
    text = paths[2].read_text()
    bp_row = next(line for line in text.splitlines() if "| bp |" in line)
    assert "2 / 0 / 0 / 0 / 0" in bp_row and "| 2.00 | 2.10 | 4.05 ± 2.76 (2) | 1.48 |" in bp_row
    dtp_row = next(line for line in text.splitlines() if "| dtp_alt |" in line)
    assert "1 / 0 / 1 / 0 / 1" in dtp_row and "| 3.00 | 3.50 | – | 1.83 |" in dtp_row
    assert "dtp_alt: 1 x" in text and "diverged" in text


def test_report_reads_trial_states_and_reasons_from_optuna_storage(sweep):
    storage = f"sqlite:///{sweep / 'optuna.db'}"
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()
    trial.set_user_attr(RUN_DIR, "/elsewhere/moved/bp_1")  # matched by name in the sweep dir
    trial.set_user_attr(FAIL_REASON, "DivergedError: The run diverged")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    pruned = study.ask()
    pruned.set_user_attr(RUN_DIR, str(sweep / "dtp_0"))
    pruned.set_user_attr(FAIL_REASON, "after 1 training epoch: val/err_best 50.00 % lags")
    pruned.report(0.5, 1)
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    states = {run.path.name: (run.state, run.reason) for run in read_runs(sweep)}
    assert states["bp_1"] == ("failed", "DivergedError: The run diverged")
    assert states["bp_0"] == ("complete", "")
    assert states["dtp_0"] == ("pruned", "after 1 training epoch: val/err_best 50.00 % lags")
    text = report(sweep, wandb=False)[2].read_text()  # pruned: its own count, not a failure
    assert "1 / 0 / 1 / 0 / 1 |" not in text and "| 0 / 1 / 1 / 0 / 1 |" in text


def test_report_follows_links_to_sweeps_and_reads_each_run_once(sweep, tmp_path_factory):
    """A directory of symlinks to sweeps (one report over several studies) is read through the
    links, with each trial's state from its sweep's storage; a link back up does not loop."""
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{sweep / 'optuna.db'}")
    pruned = study.ask()
    pruned.set_user_attr(RUN_DIR, str(sweep / "dtp_0"))
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    links = tmp_path_factory.mktemp("links")
    (links / "study_a").symlink_to(sweep, target_is_directory=True)
    (sweep / "back_up").symlink_to(links, target_is_directory=True)
    states = {run.path.name: run.state for run in read_runs(links)}
    assert sorted(states) == ["bp_0", "bp_1", "dtp_0", "dtp_1", "dtp_2"]
    assert states["dtp_0"] == "pruned"


def test_rule_label_marks_the_alternating_schedule():
    alternating = {"_target_": "tpbench.algorithms.target_propagation.schedules.Alternating"}
    cfg = OmegaConf.create({"algo": {"_target_": "a.DTP", "schedule": alternating}})
    assert rule_label(cfg, OmegaConf.create({"algo": "dtp"})) == "dtp_alt"
    cfg.algo.schedule._target_ = "tpbench.algorithms.target_propagation.schedules.Parallel"
    assert rule_label(cfg, OmegaConf.create({"algo": "dtp"})) == "dtp"
    assert rule_label(OmegaConf.create({"algo": {"_target_": "a.FA"}}), {"algo": "fa"}) == "fa"


@pytest.mark.parametrize(("preset", "rule"), [
    ("fwdtp_mnist_fc_dtp", "dtp"), ("fwdtp_mnist_fc_ldrl", "ldrl"), ("fwdtp_mnist_fc_drl", "drl"),
    ("meulemans_mnist_fc_drl", "drl"), ("bartunov_mnist_fc_dtp_alt", "dtp_alt"),
])  # fmt: skip
def test_presets_that_build_drl_from_dtp_are_reported_as_drl(preset, rule):
    cfg = compose_train([f"experiment={preset}"], hydra_config=True)
    assert rule_label(cfg, cfg.hydra.runtime.choices) == rule  # not merged with DTP's runs


def test_cli_report_by_a_config_value(sweep, tmp_path):
    assert main(["report", str(sweep), "--no-wandb", "--by", "seed"]) == 0
    assert "| bp seed=None |" in (sweep / "report.md").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match="1"):
        main(["report", str(empty)])


def test_report_orders_a_numeric_by_value_as_a_number(tmp_path):
    for lr in (1, 3, 10, 30, 100):
        write_run(tmp_path / f"lr{lr}", "ldrl", [0.5, 0.1], "[tpbench][INFO] - Done in 1.0s", 0.1)
        set_config(tmp_path / f"lr{lr}", algo__feedback_optimizer__lr=lr)
    runs = read_runs(tmp_path, by="algo.feedback_optimizer.lr")
    (labels,) = group(runs).values()
    assert [label.rpartition("=")[2] for label in labels] == ["1", "3", "10", "30", "100"]
    assert sorted(["dtp b=x", "dtp b=2", "bp", "dtp b=10"], key=label_order) == [
        "bp", "dtp b=2", "dtp b=10", "dtp b=x",
    ]  # fmt: skip


def set_config(run_dir: Path, **values: float) -> None:
    path = run_dir / ".hydra" / "config.yaml"
    cfg = OmegaConf.load(path)
    for key, value in values.items():
        OmegaConf.update(cfg, key.replace("__", "."), value)
    OmegaConf.save(cfg, path)


def test_grid_shows_each_configuration_with_pruned_and_failed_cells(tmp_path):
    done, pruned = "[tpbench][INFO] - Done in 1.0s", "[tpbench][INFO] - Pruned after 1"
    for name, errors, log, lr, beta in [
        ("a", [0.3, 0.1], done, 0.1, 0.01),
        ("b", [0.3, 0.05], done, 0.1, 0.01),  # the same configuration, another seed: best wins
        ("c", [0.6], pruned, 1.0, 0.01),
        ("d", [0.9], "[ERROR] - Run diverged: loss nan", 1.0, 0.04),
    ]:
        write_run(tmp_path / name, "fwdtp", errors, log, None)
        set_config(tmp_path / name, algo__optimizer__lr=lr, algo__top_target__beta=beta)
    (tmp_path / "c" / "run.yaml").write_text("state: pruned\nreason: after 1 training epoch\n")
    runs = read_runs(tmp_path)
    table = cells(runs, "algo.optimizer.lr", "algo.top_target.beta")
    assert table == {
        (0.1, 0.01): (5.0, "complete", 2),
        (1.0, 0.01): (60.0, "pruned", 1),
        (1.0, 0.04): (90.0, "failed", 1),
    }
    title = panel_title("mnist, fwdtp", runs, table, "algo.optimizer.lr", "algo.top_target.beta")
    assert title == "mnist, fwdtp\n4 runs in 3 cells, 1 pruned"
    paths = report(tmp_path, wandb=False, grid=("algo.optimizer.lr", "algo.top_target.beta"))
    (grid,) = [p for p in paths if p.name == "grid.png"]
    assert grid.stat().st_size > 10_000
    assert "![grid](grid.png)" in (tmp_path / "report.md").read_text()
    with pytest.raises(InputError, match="sets algo.no.such and algo.optimizer.lr"):
        report(tmp_path, wandb=False, grid=("algo.no.such", "algo.optimizer.lr"))


def test_fwdtp_table_csv_is_complete_and_consistent():
    rows = fwdtp_table()
    assert list(rows[0]) == [
        "dataset", "row", "preset", "seeds", "test_mean", "test_sd", "poster_mean", "poster_sd",
        "search",
    ]  # fmt: skip
    presets = {p.stem for p in (CONF / "experiment").glob("*.yaml")}
    for row in rows:
        assert row["preset"] in presets and row["search"]
        assert row["preset"] == f"fwdtp_{row['dataset']}_fc_{row['row']}"
        seeds = row["seeds"].split()
        assert bool(row["test_mean"]) == bool(seeds)  # a number comes with its seeds
        assert bool(row["test_sd"]) == (len(seeds) > 1)  # an sd needs two seeds or more
    poster = {(r["dataset"], r["row"]): r["poster_mean"] for r in rows}
    assert poster[("mnist", "fwdtp")] == poster[("mnist", "fwdtp_bn")] == "2.76"
    assert poster[("cifar100", "ldrl")] == "76.72"


FOUND = re.compile(r"found lr ([\d.e-]+) / stepsize ([\d.e-]+)(?: / feedback lr ([\d.e-]+))?")


SEARCHED_ROWS = [row for row in fwdtp_table() if row["search"].startswith("search:")]


@pytest.mark.parametrize("row", SEARCHED_ROWS, ids=lambda row: row["preset"])
def test_fwdtp_presets_carry_the_values_their_csv_row_was_found_with(row):
    """A row's number was measured with the values its search found; its preset must carry them,
    or re-running the preset would silently measure something else."""
    lr, stepsize, feedback_lr = FOUND.search(row["search"]).groups()
    algo = compose_train([f"experiment={row['preset']}"]).algo
    assert (algo.optimizer.lr, algo.top_target.beta) == (float(lr), float(stepsize))
    if feedback_lr is not None:
        assert algo.feedback_optimizer.lr == float(feedback_lr)


def test_report_shows_what_docs_results_measured_for_the_fwdtp_rows(tmp_path):
    done = "[tpbench][INFO] - Done in 1.0s"
    write_run(tmp_path / "r", "fwdtp_bn", [0.3, 0.03], done, 0.03, net="fwdtp_mnist_fc")
    text = report(tmp_path, wandb=False)[2].read_text()
    row = next(line for line in text.splitlines() if "| fwdtp_bn |" in line)
    measured = MEASURED_HERE[("mnist", "fwdtp_mnist_fc", "fwdtp_bn")]
    assert row.endswith(f"| 2.76 | FW-DTP 2023 | {measured} |")


def test_report_compares_biotorch_lenet_runs_with_its_benchmark(tmp_path):
    done = "[tpbench][INFO] - Done in 1.0s"
    write_run(tmp_path / "r", "fa", [0.3, 0.02], done, 0.016, net="lenet_biotorch")
    text = report(tmp_path, wandb=False)[2].read_text()
    row = next(line for line in text.splitlines() if "| fa |" in line)
    assert "| 1.70 | biotorch |" in row
