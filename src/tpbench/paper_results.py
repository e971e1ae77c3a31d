"""The papers' test errors (%), keyed by (data, net, rule) as tpbench names them, for `report`.

rule is the algo config name, with `_alt` for Bartunov's alternating schedule (see
`tpbench.report.rule_label`). Sources: Bartunov et al. 2018 Tables 1-2, the FW-DTP poster
(Shibuya et al. 2023, the 0.5M / 6.3M-parameter rows) and Ernoult et al. 2022.
"""

from __future__ import annotations

BARTUNOV = "Bartunov 2018"
FWDTP = "FW-DTP 2023"
ERNOULT = "Ernoult 2022"

_BARTUNOV_RULES = ("dtp", "dtp_alt", "sdtp", "sdtp_alt", "aosdtp", "aosdtp_alt", "fa", "dfa", "bp")
# Table 1 test errors, columns in _BARTUNOV_RULES order
_TABLE1 = {
    ("mnist", "bartunov_mnist_fc"): (2.86, 1.83, 3.52, 2.28, 2.93, 1.86, 1.85, 2.75, 1.48),
    ("mnist", "bartunov_mnist_lc"): (1.52, 1.46, 1.98, 1.90, 1.92, 1.91, 1.26, 2.05, 1.17),
    ("cifar10", "bartunov_cifar_fc"): (
        59.14,
        42.32,
        55.32,
        54.27,
        47.11,
        45.40,
        41.97,
        47.80,
        41.32,
    ),
    ("cifar10", "bartunov_cifar_lc"): (
        39.47,
        39.47,
        46.63,
        45.66,
        40.05,
        40.21,
        37.44,
        44.41,
        32.41,
    ),
}
_FWDTP_RULES = ("bp", "dtp", "drl", "ldrl", "fwdtp")
# poster table, 0.5M (MNIST, F-MNIST) and 6.3M (CIFAR) parameter nets
_FWDTP_TABLE = {
    ("mnist", "fwdtp_mnist_fc"): (1.85, 3.24, 3.13, 3.14, 2.76),
    ("fmnist", "fwdtp_mnist_fc"): (10.42, 11.86, 12.75, 12.45, 11.76),
    ("cifar10", "fwdtp_cifar_fc"): (46.16, 52.17, 50.11, 49.58, 48.97),
    ("cifar100", "fwdtp_cifar_fc"): (75.96, 77.89, 76.69, 76.72, 76.76),
}


def _build() -> dict[tuple[str, str, str], tuple[float, str]]:
    table = {}
    for (data, net), errors in _TABLE1.items():
        table.update({(data, net, r): (e, BARTUNOV) for r, e in zip(_BARTUNOV_RULES, errors)})
    for (data, net), errors in _FWDTP_TABLE.items():
        table.update({(data, net, r): (e, FWDTP) for r, e in zip(_FWDTP_RULES, errors)})
    table[("mnist", "bartunov_mnist_conv", "bp")] = (1.01, BARTUNOV)
    table[("cifar10", "bartunov_cifar_conv", "bp")] = (31.87, BARTUNOV)
    # Table 2, ImageNet top-1 (the paper trains on 224x224 ImageNet; tpbench on ImageNet32)
    for rule, error in {
        "dtp": 98.34,
        "dtp_alt": 99.36,
        "sdtp": 99.28,
        "fa": 93.08,
        "bp": 71.43,
    }.items():
        table[("imagenet32", "bartunov_imagenet_lc", rule)] = (error, BARTUNOV + " (224px)")
    table[("imagenet32", "bartunov_imagenet_conv", "bp")] = (63.93, BARTUNOV + " (224px)")
    table[("mnist", "fwdtp_mnist_fc", "tp")] = (78.99, FWDTP + " (1.1M net)")
    table[("cifar10", "ernoult_vgg", "ldrl")] = (100 - 89.4, ERNOULT)
    table[("cifar10", "ernoult_vgg", "bp")] = (100 - 89.1, ERNOULT)
    return table


PAPER_TEST_ERRORS: dict[tuple[str, str, str], tuple[float, str]] = _build()
