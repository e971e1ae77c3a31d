"""Errors a user can cause. Each carries one sentence that names the bad value and what is valid.

The entry point prints such an error as that one sentence (no traceback) and exits non-zero; inside
a sweep it is re-raised so the sweeper records the trial as failed with the sentence as reason.
"""


class TpbenchError(Exception):
    """Base class of every error caused by the user's input rather than a bug."""


class ConfigError(TpbenchError):
    """An impossible or inconsistent configuration (wrong list length, rule/net mismatch...)."""


class DataError(TpbenchError):
    """Missing, corrupt or unreadable data files."""


class DivergedError(TpbenchError):
    """The training loss became NaN or infinite."""


class InputError(TpbenchError):
    """A directory or file named on the command line that is not what the command needs."""


class StorageError(TpbenchError):
    """A file could not be written: the disk is full or the directory is not writable."""
