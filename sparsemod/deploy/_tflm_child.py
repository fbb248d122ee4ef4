"""Runs a flatbuffer in the TensorFlow Lite Micro interpreter, in a process of its own.

Run as a script by :mod:`sparsemod.deploy.tflite` (never imported by sparsemod): TFLM's
``print_allocations`` writes from C++ to the process's stderr, and an arena that is too
small can end the process with a segmentation fault, so each run gets a child process.
It imports only numpy and ``tflite_micro``.

Commands: ``report MODEL REPORT`` writes the arena report (JSON) of an interpreter with a
large arena, after one inference; ``probe MODEL ARENA`` exits 0 when one inference works
in an arena of that size and 3 when allocating fails (a too small arena may also end the
process with a segmentation fault); ``run MODEL ARENA INPUTS OUTPUTS`` runs every input
(int8 ``.npy``, one sample a row) in an arena of that size and saves the outputs.
"""

from __future__ import annotations

import json
import re
import sys

import numpy as np

from sparsemod.deploy.capture import quiet_fds

_ARENA = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_ALLOCATION = re.compile(r"'([^']+)' used (\d+) bytes")


def _interpreter(data: bytes, arena: int):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(data, arena_size=arena)


def _invoke(interp, x: np.ndarray) -> np.ndarray:
    interp.set_input(x, 0)
    interp.invoke()
    return interp.get_output(0)


def report(model: str, report_path: str) -> None:
    """The ``report`` command (see the module docstring)."""
    data = open(model, "rb").read()
    log: list[str] = []
    out: dict = {}
    try:
        with quiet_fds() as log:
            interp = _interpreter(data, max(1 << 20, 16 * len(data)))
            d = interp.get_input_details(0)
            _invoke(interp, np.zeros(d["shape"], dtype=d["dtype"]))
            interp.print_allocations()
        out["arena"] = {k: int(v) for k, v in _ARENA.findall(log[-1])}
        out["parts"] = {k: int(v) for k, v in _ALLOCATION.findall(log[-1])}
    except Exception as exc:  # the parent explains it from the log
        out["error"] = f"{type(exc).__name__}: {exc}"
    out["log"] = "".join(log)[-4000:]
    with open(report_path, "w") as f:
        json.dump(out, f)


def run(model: str, arena: str, inputs: str, outputs: str) -> None:
    """The ``run`` command (see the module docstring)."""
    interp = _interpreter(open(model, "rb").read(), int(arena))
    x = np.load(inputs)
    np.save(outputs, np.stack([_invoke(interp, x[i : i + 1])[0] for i in range(len(x))]))


def probe(model: str, arena: str) -> int:
    """The ``probe`` command: 0 when one inference runs in ``arena`` bytes, 3 when not."""
    data = open(model, "rb").read()
    try:
        interp = _interpreter(data, int(arena))
        d = interp.get_input_details(0)
        _invoke(interp, np.zeros(d["shape"], dtype=d["dtype"]))
    except RuntimeError:
        return 3
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "report":
        report(*sys.argv[2:4])
    elif sys.argv[1] == "run":
        run(*sys.argv[2:6])
    else:
        sys.exit(probe(*sys.argv[2:4]))
