"""The checks that span several keys: the cost model's keys.

Each key alone is checked by its declaration in :mod:`sparsemod.settings`; these say which
values of several keys go together, for the config and for the evaluator alike (the
latency hook's are in :mod:`sparsemod.hooks`, a pruning method's in its ``Options``).
Nothing here imports torch or anything of sparsemod but its errors and settings.
"""

from __future__ import annotations

from typing import Any

from sparsemod.errors import ConfigError
from sparsemod.settings import QUANT_SCHEMES

# The quantization schemes each runtime deploys: TFLM and ExecuTorch (Cortex-M) run the
# static int8 network (``both`` is ``post`` for every layer they convert; an LSTM they do
# not convert).
_RUNTIME_SCHEMES = {
    "tflm": ("post", "both"), "executorch": ("post", "both"), "ideal": QUANT_SCHEMES
}


def deployed_scheme(runtime: str, quant_scheme: str) -> str:
    """The scheme a candidate is quantized with: ``both`` is ``post`` under a runtime that
    runs every layer it converts in static int8 (TFLM's LSTM included), else as given."""
    return "post" if quant_scheme == "both" and runtime != "ideal" else quant_scheme


def check_runtime(
    runtime: str,
    quant_scheme: str | None,
    latency_model: str,
    board: Any,
    section: str | None = None,
    compression: str = "none",
) -> None:
    """The checks that span the cost model's keys (``quant_scheme`` None: not known here).

    Raises:
        ConfigError: ``runtime = tflm`` with a quantization scheme TFLM does not deploy
            (``none``, ``dynamic``), ``latency_model = ops`` with no board, or
            ``compression = lut`` under another runtime than ``tflm``.
    """
    where = f"[{section}] " if section else ""
    if compression == "lut" and runtime != "tflm":
        raise ConfigError(
            f"{where}compression: 'lut' is TensorFlow Lite Micro's weight compression, and "
            f"runtime = {runtime} does not count it; set runtime = tflm, or compression = none",
            section=section,
            key="compression",
        )
    if quant_scheme is not None and quant_scheme not in _RUNTIME_SCHEMES[runtime]:
        raise ConfigError(
            f"{where}quant_scheme: {quant_scheme!r} is not what runtime = {runtime} deploys "
            f"(allowed: {', '.join(_RUNTIME_SCHEMES[runtime])}: it runs the static int8 "
            "network); set quant_scheme = post, or runtime = ideal to count the network "
            "as sparsemod stores it",
            section=section,
            key="quant_scheme",
        )
    if latency_model == "ops" and board is None:
        raise ConfigError(
            f"{where}latency_model: 'ops' counts cycles on a board's core, and no board is "
            "given (set board = NAME, see `sparsemod boards`, or describe yours in a "
            "[BOARD] section)",
            section=section,
            key="latency_model",
        )
