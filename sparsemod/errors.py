"""The sparsemod error hierarchy.

Library code raises these; the command line turns them into a one-line message and an
exit code, the service into an HTTP status. Anything that is not a ``SparsemodError`` is a
bug in sparsemod (or in a user's builder) and is never swallowed silently.
"""

from __future__ import annotations


class SparsemodError(Exception):
    """Base class of every error sparsemod raises on purpose."""


class ConfigError(SparsemodError, ValueError):
    """A configuration value is missing, unknown or out of range.

    The message names the key, the value given and what is allowed.

    Args:
        message: one line saying what is wrong.
        section: the config section at fault (``TRAIN``, ``TEST``, ``DEFAULT``), when
            there is one.
        key: the key at fault (``r1``, ``prune_method``), when there is one.
    """

    def __init__(self, message: str, *, section: str | None = None, key: str | None = None):
        super().__init__(message)
        self.section = section
        self.key = key

    def __reduce__(self):  # keeps section and key across pickling (process / Ray workers)
        return _config_error, (str(self), self.section, self.key)


class DataError(SparsemodError):
    """A dataset could not be loaded (missing file, wrong format, bad split)."""


class BuildError(SparsemodError):
    """A parameter combination does not give a working network.

    Raised by builders (for example when the feature map collapses to nothing). The
    evaluator turns it into a failed trial with this message as the reason.
    """


class InfeasibleError(SparsemodError):
    """A candidate is valid but cannot be evaluated (for example it runs out of memory)."""


class CompressionError(SparsemodError):
    """Pruning or quantization was asked for something the model cannot do."""


class MeasureError(SparsemodError):
    """An objective could not be measured on a model."""


class LatencyHookError(SparsemodError):
    """The user's ``latency_hook`` raised, or returned no finite number of seconds > 0.

    The message is ``latency_hook <module:function>: <what happened>``; the evaluator fails
    the trial with it as the reason, and the search goes on.
    """


def _config_error(message: str, section: str | None, key: str | None) -> ConfigError:
    return ConfigError(message, section=section, key=key)
