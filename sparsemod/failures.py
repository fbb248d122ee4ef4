"""Which exceptions fail a candidate, and which stop the search.

A candidate failure ends as a failed trial, with its reason stored, and the search goes on
(DESIGN.md, "Failures"); every other exception propagates from :func:`sparsemod.evaluate.evaluate`.
"""

from __future__ import annotations

import torch

from sparsemod.errors import BuildError, InfeasibleError, LatencyHookError

# The closed list of candidate failures (DESIGN.md, "Failures"): a network that does not
# build (BuildError), diverges (InfeasibleError from a non-finite loss), runs out of
# memory, or whose latency the user's latency_hook fails to measure (LatencyHookError:
# the hook's bugs are the user's, and fail that trial only). Everything else is a bug, in
# sparsemod or in a user's builder or network (a TypeError, a shape mismatch, ...), or a
# deliberate error that every candidate would meet (ConfigError, CompressionError,
# MeasureError): it propagates and stops the search.
_CANDIDATE_FAILURES = (BuildError, InfeasibleError)
# torch raises a plain RuntimeError when the CPU allocator (or MPS, or cuBLAS / cuDNN)
# cannot allocate; only the CUDA caching allocator raises torch.OutOfMemoryError.
_OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "ALLOC_FAILED")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says that memory ran out (GPU or CPU)."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in _OUT_OF_MEMORY)


def candidate_failure(exc: BaseException) -> str | None:
    """Why ``exc`` fails the candidate, or None when it is not a candidate failure.

    Args:
        exc: what evaluating a candidate raised.

    Returns:
        The reason a failed trial stores (``Type: message``), or None for an exception that
        must propagate.
    """
    if is_out_of_memory(exc):
        return f"out of memory: {type(exc).__name__}: {exc}"
    if isinstance(exc, LatencyHookError):
        return str(exc)  # already says where it came from: latency_hook <module:function>
    if isinstance(exc, _CANDIDATE_FAILURES):
        return f"{type(exc).__name__}: {exc}"
    return None
