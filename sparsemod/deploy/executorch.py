"""ExecuTorch for Cortex-M: an int8 ``.pte`` program lowered to CMSIS-NN operators.

``export`` runs ExecuTorch 1.5's own Cortex-M flow (:mod:`sparsemod.deploy.executorch_lower`):
``torch.export`` of the float network with a channels-last input (the Cortex-M quantizer
only takes convolutions in NHWC), ``prepare_pt2e`` / ``convert_pt2e`` with
``CortexMQuantizer``, ``to_edge`` with the backend's edge config, ExecuTorch's
``QuantizeInputs`` / ``QuantizeOutputs`` (the program takes and returns int8; the scale
and zero point are in the artifact's :class:`~sparsemod.deploy.base.TensorSpec`, not in
ten constant methods of the ``.pte``, which would add 2.4 KB), ``CortexMPassManager``
(``cortex_m::`` operators; CMSIS-NN scratch buffers sized by ``cmsis_nn`` for the core,
Cortex-M4 by default), then ``to_executorch``. Convolutions get int8 weights per output
channel; linear layers int8 weights per tensor, the only form ExecuTorch 1.5 lowers to
``cortex_m::quantized_linear`` (one multiplier and shift); both symmetric in -127..127
(:func:`~sparsemod.deploy.executorch_lower.cortex_m_quantizer`); activations int8 per
tensor, biases int32. A layer the backend cannot lower (an LSTM in 1.5) is refused with its float
ops named.

``torch.export``'s ``ExportedProgram.module()`` adds a ``_guards_fn`` ``call_module`` node
that the Cortex-M passes cannot run ("call_module is not supported"); the graph is
unlifted with ``check_guards=False``, so there is no such node. The passes leave the
constants they replaced (the NCHW weights, float scales) in the program unused; they are
dropped before serialising, so the ``.pte`` holds only what the operators read.

``check`` reads the program's memory plan from the ``.pte`` itself (its execution plan's
``non_const_buffer_sizes``, buffer 0 being ExecuTorch's reserved empty one; the input,
output, activations and CMSIS-NN scratch all live in the planned buffers) and runs the
data in ExecuTorch's runtime (``executorch.runtime``, with the wheel's
``libexecutorch_kernels_quantized`` registered). That runtime has the portable and
quantized kernels but no ``cortex_m::`` kernels (they are built only into Cortex-M
firmware), so the Cortex-M program itself cannot run on the host. ``check`` then runs the
host variant ``export`` built beside it (``meta["host_pte"]``, base64, so the meta stays
JSON and a sidecar file keeps it for a later ``--check``): the same quantized graph, int8
weights, scales and int8 input/output, before the Cortex-M passes, on the portable and
quantized kernels (float math between quantize/dequantize nodes where the board uses
CMSIS-NN's integer requantization). ``detail["ran"]`` says which program ran and
``detail["not_on_host"]`` lists the kernels the host lacks. A runtime built with the
``cortex_m::`` kernels runs the program itself.

Needs ``pip install "sparsemod[executorch]"`` (executorch, tosa-tools).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from sparsemod.deploy.base import Artifact, DeployError, RuntimeReport, TensorSpec, require
from sparsemod.deploy.capture import quiet_fds as _quiet_fds
from sparsemod.deploy.executorch_lower import (
    DEFAULT_CPU,
    EXTRA,
    NAME,
    Lowered,
    _last,
    lower,
)

__all__ = ["RUNTIME", "ExecuTorchRuntime", "Lowered", "lower", "plan"]


def plan(pte: bytes) -> dict[str, Any]:
    """What a ``.pte`` holds, read by ExecuTorch's own deserialiser.

    Args:
        pte: the program's bytes.

    Returns:
        ``operators`` (``namespace::name.overload``, in the program's operator table) and
        ``buffers`` (the execution plan's ``non_const_buffer_sizes``: the planned memory
        arenas in bytes, index 0 being ExecuTorch's reserved empty one).
    """
    require("executorch.exir", NAME, EXTRA)
    from executorch.exir._serialize._program import deserialize_pte_binary

    if pte[4:6] != b"ET":  # the flatbuffer file identifier, "ET" and a schema version
        raise DeployError(f"{NAME}: not an ExecuTorch program (no ET file identifier)")
    try:
        program = deserialize_pte_binary(pte).program
    except Exception as exc:
        raise DeployError(f"{NAME}: not an ExecuTorch program ({_last(exc)})") from None
    plans = {p.name: p for p in program.execution_plan or []}
    if "forward" not in plans:
        raise DeployError(f"{NAME}: the program has no forward method, only {sorted(plans)}")
    forward = plans["forward"]
    return {
        "operators": [
            f"{o.name}.{o.overload}" if o.overload else o.name for o in forward.operators
        ],
        "buffers": [int(b) for b in forward.non_const_buffer_sizes],
    }


_KERNELS_LOADED: list[str] = []


def _host_runtime() -> Any:
    """ExecuTorch's runtime, with its quantized kernel library registered.

    The pip build's Python runtime registers only the portable kernels; the
    ``quantized_decomposed`` kernels ship beside it in ``libexecutorch_kernels_quantized``,
    whose static initialisers register them with the same runtime when it is loaded (once,
    and only when the runtime does not have them already: registering a kernel twice is an
    error there).
    """
    import ctypes

    require("executorch.runtime", NAME, EXTRA)
    import executorch
    from executorch.runtime import Runtime

    runtime = Runtime.get()
    have = set(runtime.operator_registry.operator_names)
    if not _KERNELS_LOADED and "quantized_decomposed::quantize_per_tensor.out" not in have:
        for root in executorch.__path__:
            lib = os.path.join(root, "lib", "libexecutorch_kernels_quantized.so")
            if os.path.exists(lib):
                ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
                _KERNELS_LOADED.append(lib)
                break
    return runtime


def _quantize_input(x: torch.Tensor, spec: TensorSpec) -> torch.Tensor:
    if spec.scale is None or spec.zero_point is None:
        return x.float()
    return torch.clamp(torch.round(x / spec.scale) + spec.zero_point, -128, 127).to(torch.int8)


def _gather(data: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for x, y in data:
        xs.append(torch.as_tensor(x).detach().cpu().float())
        ys.append(torch.as_tensor(y).detach().cpu().reshape(-1))
    if not xs:
        raise DeployError(f"{NAME}: check needs data to run through the program")
    return torch.cat(xs), torch.cat(ys)


class ExecuTorchRuntime:
    """The ``executorch`` runtime: the Cortex-M flow to export, ExecuTorch's runtime to check.

    Args:
        cpu: the Cortex-M core the program is lowered for (see :func:`lower`).
    """

    name = NAME
    extra = EXTRA
    requires = ("executorch",)  # the modules export and check import
    suffix = ".pte"

    def __init__(self, cpu: str = DEFAULT_CPU) -> None:
        self.cpu = cpu

    def export(
        self, model: nn.Module, example: torch.Tensor, calibration: Iterable[torch.Tensor]
    ) -> Artifact:
        """Quantize ``model`` to int8 and lower it to a Cortex-M ``.pte``.

        Args:
            model: the trained float network (eval mode); it is not changed.
            example: one input batch of batch size 1.
            calibration: training batches the activation ranges are calibrated on.

        Returns:
            The program, its int8 input and output specs; ``meta["host_pte"]`` holds the
            host variant (base64) that :meth:`check` runs.

        Raises:
            DeployError: see :func:`lower`.
        """
        with _quiet_fds():
            low = lower(model, example, calibration, self.cpu)
        return self.artifact(low)

    def artifact(self, low: Lowered) -> Artifact:
        """The artifact of one lowering (what :meth:`export` returns).

        Args:
            low: the stages of :func:`lower`.

        Returns:
            The Cortex-M ``.pte`` with its input/output specs; ``meta["host_pte"]`` holds
            the host variant (base64) that :meth:`check` runs.
        """
        from importlib import metadata

        meta = {
            "converter": f"executorch {metadata.version('executorch')} (Cortex-M, CMSIS-NN)",
            "cpu": f"Cortex-{low.cpu}",
            "quantizer": "CortexMQuantizer: int8 conv weights per output channel, int8 "
            "linear weights per tensor (both symmetric, -127..127), int8 per-tensor "
            "activations, int32 biases",
            "ops": plan(low.pte)["operators"],
            "scratch_bytes": dict(low.scratch_bytes),
            "host_pte": base64.b64encode(low.host_pte).decode("ascii"),
        }
        return Artifact(NAME, self.suffix, low.pte, low.inputs, low.outputs, meta)

    def check(
        self, artifact: Artifact, data: Iterable[tuple[torch.Tensor, torch.Tensor]]
    ) -> RuntimeReport:
        """Run ``data`` through the program in ExecuTorch's runtime and read its plan.

        Args:
            artifact: an ``executorch`` artifact.
            data: (inputs, labels) batches.

        Returns:
            Accuracy, the ``.pte``'s bytes, and its planned memory: ``memory_bytes`` is the
            sum of the execution plan's non-constant buffers, ``memory_split`` names each
            (``planned_buffer_<id>``). ``detail["ran"]`` says which program ran.

        Raises:
            DeployError: executorch is missing, the runtime has no kernel for an op of the
                program and there is no host variant, or the data does not fit the input.
        """
        runtime = _host_runtime()
        figures = plan(artifact.data)
        registered = set(runtime.operator_registry.operator_names)
        missing = [op for op in figures["operators"] if op not in registered]
        spec = artifact.inputs[0]
        detail: dict[str, Any] = {"operators": figures["operators"]}
        if not missing:
            pte, detail["ran"] = artifact.data, "the program itself"
        elif "host_pte" in artifact.meta:
            pte = base64.b64decode(artifact.meta["host_pte"])
            detail["ran"] = (
                "the host variant: the same int8 graph, weights and input/output before the "
                "Cortex-M passes, on ExecuTorch's portable and quantized kernels"
            )
            detail["not_on_host"] = missing
            host_missing = [op for op in plan(pte)["operators"] if op not in registered]
            if host_missing:
                raise DeployError(f"{NAME}: the host runtime has no kernel for {host_missing[0]}")
        else:
            raise DeployError(
                f"{NAME}: the host runtime has no kernel for {missing[0]} and the artifact "
                "carries no host variant to check instead"
            )
        xs, ys = _gather(data)
        if tuple(xs.shape[1:]) != tuple(spec.shape[1:]):
            raise DeployError(
                f"{NAME}: the data's samples are {tuple(xs.shape[1:])}, the program's input "
                f"is {tuple(spec.shape[1:])}"
            )
        with _quiet_fds() as caught:
            try:
                method = runtime.load_program(pte).load_method("forward")
                outs = [method.execute([_quantize_input(x, spec)])[0] for x in xs.split(1)]
            except Exception as exc:
                failure: Exception | None = exc
            else:
                failure = None
        if failure is not None:
            log = [ln for ln in "".join(caught).splitlines() if ln.strip()]
            raise DeployError(
                f"{NAME}: the runtime cannot run the program: {_last(failure)}"
                + (f" ({log[-1].strip()})" if log else "")
            )
        predicted = torch.cat([o.reshape(1, -1) for o in outs]).argmax(1)
        buffers = figures["buffers"]
        return RuntimeReport(
            NAME,
            artifact.size_bytes,
            float((predicted == ys).float().mean()),
            len(ys),
            memory_bytes=sum(buffers),
            memory_split={f"planned_buffer_{i}": b for i, b in enumerate(buffers) if i},
            detail=detail,
        )


RUNTIME = ExecuTorchRuntime()
