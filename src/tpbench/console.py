"""What a user sees on the console: progress on stdout, warnings and mistakes on stderr, no noise.

- `mistakes_told()` wraps the command-line entry points (and a single run's task, where Hydra
  would otherwise add its own "Error executing job" line): a mistake (a TpbenchError, a Hydra
  composition or override error, a bad `_target_`) ends in one `ERROR: <sentence>` line on stderr
  and exit code 1; anything else is a bug and keeps its traceback. `hydra_raising()` makes Hydra
  raise its errors instead of printing them; HYDRA_FULL_ERROR=1 shows tracebacks for everything,
  as in plain Hydra.
- `quiet()` silences third-party warnings a user cannot act on (deprecations inside Lightning and
  torch, DataLoader-worker advice for in-memory data, the resume-into-the-same-directory notices).
  Lightning's INFO banners (GPU available, the litlogger tip) are silenced by the logging config
  in conf/hydra/default.yaml, which also sends WARNING and above to stderr (`BelowWarning`
  keeps them off stdout).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from hydra.errors import HydraException, InstantiationException
from omegaconf.errors import OmegaConfBaseException

from tpbench.atomic import storage_error
from tpbench.errors import TpbenchError

log = logging.getLogger("tpbench")

# messages of warnings with nothing for a tpbench user to do (regular expressions)
KNOWN_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)",  # torch pytree deprecation inside Lightning
    r"The number of training batches .* is smaller than the logging interval",
    r"The '\w+' does not have many workers",  # tpbench's batches are in memory, no workers
    r"Experiment logs directory .* exists and is not empty",  # a resumed run continues its CSV
    r"Checkpoint directory .* exists and is not empty",  # a resumed run keeps its checkpoints
    # on every host with Slurm installed (login and compute nodes): advice for multi-process jobs
    # started without srun, which tpbench's launchers and docs/scaling.md never do
    r"The `srun` command is available on your system but is not used",
)
DETAIL_LINES = ("full_key:", "object_type=", "reference_type=", "Set the environment variable")
# trailing parts of Hydra's messages that name its internals, not the user's mistake
NOISE = (r"; Config search path:.*", r"; See https://hydra\.cc\S* for details")


def quiet() -> None:
    """Ignore KNOWN_WARNINGS in this process (the entry point and train() call it: a launcher's
    job may run in a fresh process)."""
    for message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


class BelowWarning(logging.Filter):
    """Passes INFO and DEBUG records (the stdout handler); WARNING and above go to stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


def configure_logging() -> None:
    """INFO on stdout, WARNING and above as `LEVEL: message` on stderr (outside Hydra's jobs,
    whose logging conf/hydra/default.yaml configures the same way)."""
    out = logging.StreamHandler(sys.stdout)
    out.addFilter(BelowWarning())
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    err.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[out, err])


def one_sentence(error: BaseException) -> str | None:
    """The user-facing sentence of a mistake, or None for an error that is a bug."""
    if isinstance(error, TpbenchError):
        return str(error)
    if (storage := storage_error(error)) is not None:  # e.g. Hydra creating the run directory
        return str(storage)
    if isinstance(error, InstantiationException):
        if isinstance(error.__cause__, TpbenchError):
            return str(error.__cause__)
        key = re.search(r"full_key: (\S+)", str(error))
        cause = error.__cause__ or condense(str(error))
        return f"{key.group(1) if key else 'a config node'} cannot be built: {cause}"
    if isinstance(error, HydraException | OmegaConfBaseException):
        return condense(str(error))
    return None


def condense(message: str) -> str:
    """A multi-line Hydra message as one line: a line ending in ':' introduces a list, which is
    joined with commas; detail lines (full_key, object_type, the HYDRA_FULL_ERROR hint) go."""
    parts: list[str] = []
    items: list[str] = []
    for line in (line.strip() for line in message.splitlines()):
        if not line or line.startswith(DETAIL_LINES):
            continue
        if parts and parts[-1].endswith(":") and not line.endswith(":"):
            items.append(line)
            continue
        if items:
            parts[-1] += " " + ", ".join(items)
            items = []
        parts.append(line)
    if items:
        parts[-1] += " " + ", ".join(items)
    sentence = re.sub(r"\s+", " ", "; ".join(parts))
    for noise in NOISE:
        sentence = re.sub(noise, "", sentence)
    return sentence


def tell(sentence: str, level: int = logging.ERROR) -> None:
    """`ERROR: sentence` on stderr, whatever the logging config (a sweep's trials log to files
    only), and into the run's log file when there is one."""
    record = log.makeRecord(log.name, level, __file__, 0, sentence, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    stderr.handle(record)


@contextmanager
def mistakes_told() -> Iterator[None]:
    """Run a command; a mistake ends in one line on stderr and exit code 1, a bug raises."""
    try:
        yield
    except Exception as error:
        sentence = None if _tracebacks else one_sentence(error)
        if sentence is None:
            raise
        tell(sentence)
        sys.exit(1)


@contextmanager
def hydra_raising() -> Iterator[None]:
    """Make Hydra raise composition errors instead of printing them (see mistakes_told); with
    HYDRA_FULL_ERROR=1 set by the user, every error keeps its traceback."""
    global _tracebacks
    _tracebacks = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    quiet()
    try:
        yield
    finally:
        if not _tracebacks:
            os.environ.pop("HYDRA_FULL_ERROR", None)


_tracebacks = False  # the user asked for full tracebacks (HYDRA_FULL_ERROR=1)
