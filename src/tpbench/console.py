"""What a user sees on the console: progress on stdout, warnings and mistakes on stderr, no noise.

- `one_sentence_errors()` wraps the command-line entry points: a mistake (a TpbenchError, a Hydra
  composition or override error, a bad `_target_`) ends in one `ERROR: <sentence>` line on stderr
  and exit code 1; anything else is a bug and keeps its traceback. HYDRA_FULL_ERROR=1 shows
  tracebacks for everything, as in plain Hydra.
- `quiet()` silences third-party warnings a user cannot act on (deprecations inside Lightning and
  torch, DataLoader-worker advice for in-memory data, the resume-into-the-same-directory notices).
  Lightning's INFO banners (GPU available, the litlogger tip) are silenced by the logging config
  in conf/hydra/default.yaml, which also sends WARNING and above to stderr (`StderrSplit`).
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

from tpbench.errors import TpbenchError

log = logging.getLogger("tpbench")

# messages of warnings with nothing for a tpbench user to do (regular expressions)
KNOWN_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)",  # torch pytree deprecation inside Lightning
    r"The number of training batches .* is smaller than the logging interval",
    r"The '\w+' does not have many workers",  # tpbench's batches are in memory, no workers
    r"Experiment logs directory .* exists and is not empty",  # a resumed run continues its CSV
    r"Checkpoint directory .* exists and is not empty",  # a resumed run keeps its checkpoints
)
DETAIL_LINES = ("full_key:", "object_type=", "reference_type=", "Set the environment variable")


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
    if isinstance(error, InstantiationException) and isinstance(error.__cause__, TpbenchError):
        return str(error.__cause__)
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
    return re.sub(r"\s+", " ", "; ".join(parts))


@contextmanager
def one_sentence_errors() -> Iterator[None]:
    """Run a command; a mistake ends in one line on stderr and exit code 1 (see module doc)."""
    full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises, so the mistake is told here
    quiet()
    try:
        yield
    except Exception as error:
        sentence = None if full else one_sentence(error)
        if sentence is None:
            raise
        if not logging.getLogger().handlers:  # nothing configured yet (a composition error)
            configure_logging()
        log.error("%s", sentence)
        sys.exit(1)
    finally:
        if not full:
            os.environ.pop("HYDRA_FULL_ERROR", None)
