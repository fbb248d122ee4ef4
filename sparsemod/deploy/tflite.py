"""TensorFlow Lite Micro: an int8 ``.tflite`` flatbuffer from litert-torch, run in TFLM.

``export`` quantizes the float network with litert-torch's ``PT2EQuantizer`` (int8
activations per tensor, int8 weights symmetric per output channel, int32 biases),
calibrated on the given batches, and converts it with ``litert_torch.convert``. The
flatbuffer's input and output are int8 too; their scale and zero point are read back from
the flatbuffer into the artifact's :class:`~sparsemod.deploy.base.TensorSpec`.

A recurrent network (an ``nn.LSTM`` or ``nn.GRU``) goes another way, because the PT2E
quantizer leaves the recurrent layer in float: litert-torch converts the float network,
unrolling the layer over the sequence into ``FULLY_CONNECTED``, ``LOGISTIC``, ``TANH``,
``MUL`` and ``ADD`` ops, which TFLM runs in int8; Google's AI Edge Quantizer (installed
with litert-torch) then quantizes that flatbuffer statically (``static_wi8_ai8``: int8
weights, activations, input and output), calibrated sample by sample on the same batches.

``check`` runs the flatbuffer in ``tflite_micro``'s Python interpreter (the real TFLM
kernels and memory planner) in a child process (:mod:`sparsemod.deploy._tflm_child`),
and reports what TFLM's ``RecordingMicroAllocator`` prints: the arena's head (activations,
laid out by the memory planner) and its tail (persistent data: tensor structs,
quantization parameters, kernel buffers), as ``memory_split``. ``memory_bytes`` is the
smallest arena (to 16 B) in which TFLM allocates and runs the model, found by trying: the
printed total (head + tail, ``detail["arena_printed_total"]``) is what stays allocated,
but the planner needs some scratch above the head while it plans, so on some models the
smallest arena that works is up to a few hundred bytes more. The test data runs in an
arena of exactly ``memory_bytes``.

Needs ``pip install "sparsemod[tflite]"`` (litert-torch, tflite-micro).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sparsemod.deploy.base import (
    Artifact,
    DeployError,
    RuntimeReport,
    TensorSpec,
    gather,
    quantize_input,
    require,
)
from sparsemod.deploy.capture import quiet_fds as _quiet_fds
from sparsemod.deploy.tflite_quantize import EXTRA, NAME, pt2e_int8, recurrent_int8

_CHILD = Path(__file__).with_name("_tflm_child.py")
_ALIGN = 16  # TFLM aligns arena allocations to 16 B
_LAYER = re.compile(r"torch\.nn\.modules\.[a-z_.]+\.([A-Za-z0-9]+)_([A-Za-z0-9_.]+?);")
_MISSING_OP = re.compile(r"[Dd]idn't find op for builtin opcode '(\w+)'")
# Tensor types of the TFLite schema that may carry activations in a fully int8 model.
_INT8_OK = {"INT8", "INT32", "INT64", "BOOL", "INT16"}


def _schema() -> Any:
    require("tflite_micro", NAME, EXTRA)
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

    return schema_py_generated


def _names(enum: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_")}


def layer_of(name: str) -> str | None:
    """The torch layer a flatbuffer tensor name points to (litert names tensors after the
    module path: ``...conv.Conv2d_b1_l1_conv;``), or None."""
    found = _LAYER.findall(name)
    return f"{found[-1][1]} ({found[-1][0]})" if found else None


def operators(data: bytes) -> list[dict[str, Any]]:
    """The flatbuffer's operators in order: ``op`` (builtin name), ``layer`` (the torch
    layer it came from, when the tensor names tell), and the types of its non-constant
    tensors."""
    s = _schema()
    model = s.Model.GetRootAsModel(data, 0)
    ops, types = _names(s.BuiltinOperator), _names(s.TensorType)
    graph = model.Subgraphs(0)
    found = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = ops.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        if name == "CUSTOM" and code.CustomCode():
            name = code.CustomCode().decode()  # TFLM_DECODE
        tensors = [graph.Tensors(op.Outputs(j)) for j in range(op.OutputsLength())]
        tensors += [graph.Tensors(k) for k in op.InputsAsNumpy() if k >= 0]
        live = [t for t in tensors if model.Buffers(t.Buffer()).DataLength() == 0]
        layers = [layer_of(t.Name().decode()) for t in tensors]
        found.append(
            {
                "op": name,
                "layer": next((x for x in layers if x), None),
                "types": sorted({types[t.Type()] for t in live}),
            }
        )
    return found


def _specs(data: bytes, which: str) -> tuple[TensorSpec, ...]:
    s = _schema()
    model = s.Model.GetRootAsModel(data, 0)
    types = _names(s.TensorType)
    graph = model.Subgraphs(0)
    index = graph.InputsAsNumpy() if which == "inputs" else graph.OutputsAsNumpy()
    specs = []
    for k in index:
        t = graph.Tensors(int(k))
        q = t.Quantization()
        scales = q.ScaleAsNumpy() if q is not None and q.ScaleLength() else None
        zeros = q.ZeroPointAsNumpy() if q is not None and q.ZeroPointLength() else None
        specs.append(
            TensorSpec(
                t.Name().decode(),
                tuple(int(d) for d in t.ShapeAsNumpy()),
                types[t.Type()].lower(),
                None if scales is None else float(scales[0]),
                None if zeros is None else int(zeros[0]),
            )
        )
    return tuple(specs)


def _check_int8(data: bytes) -> None:
    for op in operators(data):
        if not set(op["types"]) <= _INT8_OK:
            raise DeployError(
                f"tflite: the converter left op {op['op']} of layer {op['layer'] or '?'} "
                f"in {'/'.join(op['types']).lower()}, not int8"
            )


class TFLiteRuntime:
    """The ``tflite`` runtime: litert-torch to convert, TFLM to check."""

    name = NAME
    extra = EXTRA
    requires = ("litert_torch", "tflite_micro")  # the modules export and check import
    suffix = ".tflite"

    def export(
        self, model: nn.Module, example: torch.Tensor, calibration: Iterable[torch.Tensor]
    ) -> Artifact:
        """Quantize ``model`` to int8 and convert it to a ``.tflite`` flatbuffer.

        Args:
            model: the trained float network (eval mode); it is not changed.
            example: one input batch of batch size 1.
            calibration: training batches the activation ranges are calibrated on.

        Returns:
            The flatbuffer, with its int8 input and output specs.

        Raises:
            DeployError: litert-torch is missing, cannot convert the network, or leaves an
                op in float.
        """
        litert_torch = require("litert_torch", NAME, EXTRA)
        from litert_torch.quantize.quant_config import QuantConfig

        example = example.cpu()[:1]
        recurrent = any(isinstance(m, nn.RNNBase) for m in model.modules())
        with _quiet_fds() as caught:
            try:
                if recurrent:
                    data = recurrent_int8(model.eval(), example, calibration)
                else:
                    quantized, quantizer = pt2e_int8(model.eval(), example, calibration)
                    edge = litert_torch.convert(
                        quantized, (example,), quant_config=QuantConfig(pt2e_quantizer=quantizer)
                    )
                    data = bytes(edge.model_content())
            except DeployError:
                raise
            except Exception as exc:
                failure: Exception | None = exc
            else:
                failure = None
        if failure is not None:
            last = str(failure).strip().splitlines() or [type(failure).__name__]
            rnns = [
                f"{n} ({type(m).__name__})"
                for n, m in model.named_modules()
                if isinstance(m, nn.RNNBase)
            ]
            where = f" with layer {rnns[0]}" if rnns else ""
            raise DeployError(
                f"tflite: litert-torch cannot convert the network{where}: "
                f"{type(failure).__name__}: {last[-1]}"
            )
        del caught
        _check_int8(data)
        inputs, outputs = _specs(data, "inputs"), _specs(data, "outputs")
        if len(inputs) != 1 or len(outputs) != 1:
            raise DeployError(
                f"tflite: expected one input and one output, got {len(inputs)} and {len(outputs)}"
            )
        from importlib import metadata

        quantized_by = (
            f"ai-edge-quantizer {metadata.version('ai-edge-quantizer')} static_wi8_ai8 of the "
            "float flatbuffer (the recurrent layer unrolled by the converter)"
            if recurrent
            else "litert PT2EQuantizer, symmetric per-channel int8 weights, "
            "int8 per-tensor activations"
        )
        meta = {
            "converter": f"litert-torch {metadata.version('litert-torch')}",
            "quantizer": quantized_by,
            "ops": [op["op"] for op in operators(data)],
        }
        return Artifact(NAME, self.suffix, data, inputs, outputs, meta)

    def check(
        self, artifact: Artifact, data: Iterable[tuple[torch.Tensor, torch.Tensor]]
    ) -> RuntimeReport:
        """Run ``data`` through the flatbuffer in TFLM and read TFLM's arena report.

        Args:
            artifact: a ``tflite`` artifact.
            data: (inputs, labels) batches.

        Returns:
            Accuracy, the flatbuffer's bytes, the smallest arena that runs it and the
            arena's head and tail as TFLM prints them.

        Raises:
            DeployError: tflite-micro is missing, TFLM cannot run an op (named with its
                layer), or the data does not fit the artifact's input.
        """
        require("tflite_micro", NAME, EXTRA)
        spec = artifact.inputs[0]
        xs, ys = gather(data)
        if tuple(xs.shape[1:]) != spec.shape[1:]:
            raise DeployError(
                f"tflite: the data's samples are {tuple(xs.shape[1:])}, the artifact's input "
                f"is {spec.shape[1:]}"
            )
        q = quantize_input(xs, spec)
        with tempfile.TemporaryDirectory(prefix="sparsemod-tflm-") as tmp:
            paths = {k: os.path.join(tmp, k) for k in ("model", "x.npy", "y.npy", "report")}
            Path(paths["model"]).write_bytes(artifact.data)
            np.save(paths["x.npy"], q)
            run = _child("report", paths["model"], paths["report"])
            report = _read_report(paths["report"], run, artifact)
            total = report["arena"]["total"]
            smallest = _smallest_arena(paths["model"], total)
            run = _child("run", paths["model"], str(smallest), paths["x.npy"], paths["y.npy"])
            if run.returncode != 0:
                tail = (run.stderr.strip().splitlines() or [f"exit {run.returncode}"])[-1]
                raise DeployError(f"tflite: TFLM failed running the test data: {tail}")
            out = np.load(paths["y.npy"])
        correct = int((out.reshape(len(out), -1).argmax(1) == ys).sum())
        return RuntimeReport(
            NAME,
            artifact.size_bytes,
            correct / len(ys),
            len(ys),
            memory_bytes=smallest,
            memory_split={
                "activations": report["arena"]["head"],
                "persistent": report["arena"]["tail"],
            },
            detail={
                "arena_printed_total": total,
                "arena_parts": report["parts"],
            },
        )


def _child(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(_CHILD), *args], capture_output=True, text=True, timeout=600
    )


def _read_report(path: str, run: subprocess.CompletedProcess, artifact: Artifact) -> dict:
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or [f"exit {run.returncode}"]
        raise DeployError(
            f"tflite: the TFLM interpreter ended without a report: {tail[0]}"
        ) from None
    if "error" in report:
        missing = _MISSING_OP.search(report.get("log", ""))
        if missing:
            op = missing.group(1)
            layers = [o["layer"] for o in operators(artifact.data) if o["op"] == op]
            where = f" (layer {layers[0]})" if layers and layers[0] else ""
            raise DeployError(f"tflite: TFLM has no kernel for op {op}{where}")
        lines = [ln for ln in report.get("log", "").splitlines() if ln.strip()]
        raise DeployError(
            f"tflite: TFLM cannot run the flatbuffer: {report['error']}"
            + (f" ({lines[-1].strip()})" if lines else "")
        )
    if "total" not in report.get("arena", {}):
        raise DeployError("tflite: TFLM printed no arena allocation report")
    return report


def _works(model: str, arena: int) -> bool:
    return _child("probe", model, str(arena)).returncode == 0


def _smallest_arena(model: str, total: int) -> int:
    """The smallest arena (to 16 B) in which TFLM allocates and runs the model: from the
    printed total, up in doubling steps until one works, then bisected; when the total
    works, 16 B less is probed (and bisected down from, should that work too). Each try
    is a child process: a too small arena can end the process."""
    if _works(model, total):
        if not _works(model, total - _ALIGN):
            return total
        lo, hi = 0, total - _ALIGN
    else:
        lo, step = total, _ALIGN
        while not _works(model, total + step):
            lo = total + step
            step *= 2
            if step > 1 << 20:
                raise DeployError(f"tflite: TFLM runs the model in no arena up to {lo} bytes")
        hi = total + step
    while hi - lo > _ALIGN:
        mid = (lo + hi) // 2 // _ALIGN * _ALIGN
        if mid <= lo:
            break
        if _works(model, mid):
            hi = mid
        else:
            lo = mid
    return hi


RUNTIME = TFLiteRuntime()
