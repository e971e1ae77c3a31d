"""The command line checked before Hydra runs (tpbench.command_line): each mistake is one
ConfigError naming key, value and the closest valid choices; what is valid passes, every preset
and search space included. In-process and quick; tests/test_mistakes.py runs the same as a user."""

from __future__ import annotations

from pathlib import Path

import pytest

from tpbench.command_line import check_command_line
from tpbench.errors import ConfigError
from tpbench.train import CONFIG_DIR

WRONG = [
    (["-m", "algo=bp,fwtdp"], "algo=fwtdp is not an option of algo"),
    (["algo/top_target=lable"], "closest: label"),
    (["+experiment=bartunov_mnist_fc_dtp"], "select an option with experiment=<option> (no +)"),
    (["experiment=null"], "to go without one, write ~experiment"),
    (["data=mnist", "data.download=off"], "data.download=off is not valid: data.download takes "
     "true or false"),
    (["trainer.max_epochs=ten"], "trainer.max_epochs=ten is not valid"),
    (["net.hidden=16"], "net.hidden=16 is not valid: net.hidden takes a list"),
    (["net=torch", "net.hidden=[16]"], "net (net=torch) has no key hidden; its keys: model"),
    (["algo=fwdtp", "algo.feedback_optimizer.lr=0.1"],
     "algo.feedback_optimizer is null here, so it has no key lr"),
    (["trainer.deterministic=yes"], "takes one of warn or true or false or null"),
    (["-m", "algo.optimizer.lr=range(5,1)"], "is an empty range"),
    (["-m", "test=true,yes"], "test=yes is not valid"),
    (["-m", "hparams_search=dtp_random"],  # with the default rule, bp: nothing to search there
     "hydra.sweeper.params.algo.feedback_optimizer.lr: algo (algo=bp) has no key"),
    (["-m", "hparams_search=bp_random", "hydra.sweeper.params.algo.optimizer.lr=interval(1,0)"],
     "algo.optimizer.lr=interval(1,0) is an empty interval"),
    (["-m", "hparams_search=bp_random", "hydra.sweeper.params.algo.optimizer.lr=choice()"],
     "empty choice is not legal"),
    (["-m", "hparams_search=bp_random", "algo.no_such_option=choice(1,2)"],
     "algo.no_such_option=choice(1,2): algo (algo=bp) has no key no_such_option"),
]  # fmt: skip
RIGHT = [
    ["trainer.devices=auto", "trainer.precision=bf16-mixed", "trainer.deterministic=warn"],
    ["algo.optimizer.lr=${oc.decode:0.01}", "data.seed=${seed}"],
    ["data=mnist", "data.val_size=0.1", "data.resize=32", "data.download=false"],
    ["algo=dtp", "algo/top_target=label", "+algo.momentum=0.9", "~callbacks.progress_bar"],
    ["-m", "hparams_search=bp_random", "algo.optimizer.lr=0.1,0.01", "seed=range(1,4)"],
    ["-m", "hparams_search=dtp_random", "experiment=bartunov_mnist_fc_dtp"],
    ["-m", "hydra/launcher=local", "algo=bp,fa"],
    [
        "-m",
        "hparams_search=bp_random",
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=1",
    ],
]


@pytest.mark.parametrize(("argv", "words"), WRONG, ids=[" ".join(a) for a, _ in WRONG])
def test_mistake_names_key_value_and_choices(argv, words):
    with pytest.raises(ConfigError) as error:
        check_command_line(argv, CONFIG_DIR)
    assert words in str(error.value)
    assert "\n" not in str(error.value) and "+key=" not in str(error.value)


@pytest.mark.parametrize("argv", RIGHT, ids=[" ".join(a) for a in RIGHT])
def test_valid_command_lines_pass(argv):
    check_command_line(argv, CONFIG_DIR)


@pytest.mark.slow
def test_every_preset_and_search_space_passes():
    for path in sorted(Path(CONFIG_DIR, "experiment").glob("*.yaml")):
        check_command_line([f"experiment={path.stem}"], CONFIG_DIR)
    for path in sorted(Path(CONFIG_DIR, "hparams_search").glob("[a-z]*.yaml")):
        preset = "fwdtp_mnist_fc_dtp" if "fwdtp" in path.stem else "bartunov_mnist_fc_dtp"
        check_command_line(
            ["-m", f"hparams_search={path.stem}", f"experiment={preset}"], CONFIG_DIR
        )
