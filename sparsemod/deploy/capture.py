"""What a runtime's C++ code prints, kept off the terminal and kept for an error message.

The converters and interpreters (litert-torch, TFLM, ExecuTorch) write progress and logs
straight to file descriptors 1 and 2, past ``sys.stdout``. Imports no torch: the TFLM
child process (:mod:`sparsemod.deploy._tflm_child`) uses it too.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_fds() -> Iterator[list[str]]:
    """Send fds 1 and 2 to a temporary file while the block runs.

    Yields:
        A list that holds, once the block ends, what was printed (one string).
    """
    caught: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with tempfile.TemporaryFile(mode="w+b") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield caught
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            f.seek(0)
            caught.append(f.read().decode(errors="replace"))
