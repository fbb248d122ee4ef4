"""ONNX: a QDQ int8 model, checked with onnxruntime.

``export`` writes the float network with ``torch.onnx.export`` and quantizes it with
onnxruntime's ``quantize_static`` in the QDQ format: int8 weights symmetric per output
channel, int8 activations per tensor (asymmetric), their range calibrated on the given
batches by percentile (99.999 %): of onnxruntime's calibrators it comes closest to the
histogram observer of sparsemod's own int8 model (min / max and entropy moved 2 of 270
test samples of a digits CNN, percentile at most 1). The graph's float input and output
are then taken out of their ``QuantizeLinear`` / ``DequantizeLinear`` (across the
reshapes between them and the graph's ends): the model reads an int8 input and writes an
int8 output, whose scale and zero point are recorded in the artifact's specs.

``torch.onnx.export`` takes the TorchScript path (``dynamo=False``): its ``torch.export``
path needs ``onnxscript``, which the ``onnx`` extra does not install.

``check`` runs the model in an onnxruntime ``InferenceSession`` on the CPU, whose graph
optimizer fuses each DequantizeLinear -> op -> QuantizeLinear group into an int8 kernel
(``QLinearConv``, ``QLinearMatMul``, ...). onnxruntime plans no fixed arena one can read:
its CPU allocator grows a pool as tensors are requested, and what it holds depends on the
execution provider, the thread pool and the pattern of earlier runs; the session exposes
no figure of the working memory one inference needs. So ``memory_bytes`` is ``None``.

Needs ``pip install "sparsemod[onnx]"`` (onnx, onnxruntime).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from collections.abc import Iterable, Iterator
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

NAME = "onnx"
EXTRA = "onnx"
_OPSET = 17
_INT8 = 3  # onnx.TensorProto.INT8


def _float_onnx(model: nn.Module, example: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            buf,
            dynamo=False,
            opset_version=_OPSET,
            input_names=["input"],
            output_names=["output"],
        )
    return buf.getvalue()


@contextlib.contextmanager
def _quiet_root() -> Iterator[None]:
    """Hold back the root logger's warnings that quantize_static writes (pre-processing
    advice) while it runs."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class _Reader:
    """onnxruntime's CalibrationDataReader over the calibration batches."""

    def __init__(self, name: str, batches: Iterable[torch.Tensor]) -> None:
        self._feeds = iter(
            {name: x[i : i + 1].numpy().astype(np.float32)}
            for b in batches
            for x in [b.detach().cpu().float()]
            for i in range(len(x))
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


_SHAPE_OPS = {"Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity"}


def _chain(graph: Any, start: str, forward: bool) -> tuple[Any, list[Any]]:
    """From a graph input (``forward``) or output, the QuantizeLinear (DequantizeLinear)
    reached across shape-only ops, and those ops; (None, []) when there is none."""
    want = "QuantizeLinear" if forward else "DequantizeLinear"
    passed, name = [], start
    while True:
        if forward:
            nodes = [n for n in graph.node if name in n.input]
        else:
            nodes = [n for n in graph.node if name in n.output]
        if len(nodes) != 1:
            return None, []
        node = nodes[0]
        if node.op_type == want:
            return node, passed
        if node.op_type not in _SHAPE_OPS:
            return None, []
        passed.append(node)
        name = node.output[0] if forward else node.input[0]


def _first_op(graph: Any, start: str, forward: bool) -> Any:
    """The first op past the shape-only ops from a graph input (or output), or None.

    An op that only reads the tensor's shape (``Shape``: an LSTM's initial state is sized
    by its input) is passed over for the op that computes on the tensor.
    """
    name = start
    for _ in range(len(graph.node)):
        nodes = [n for n in graph.node if name in (n.input if forward else n.output)]
        if not nodes:
            return None
        compute = [n for n in nodes if n.op_type not in _SHAPE_OPS and n.op_type != "Shape"]
        if compute:
            return compute[0]
        follow = [n for n in nodes if n.op_type != "Shape"]
        if not follow:
            return nodes[0]
        name = follow[0].output[0] if forward else follow[0].input[0]
    return None


def _int8_io(model: Any) -> tuple[TensorSpec, TensorSpec]:
    """Make the graph's input and output int8 in place; their specs."""
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inp, out = graph.input[0], graph.output[0]
    q, _ = _chain(graph, inp.name, forward=True)
    d, _ = _chain(graph, out.name, forward=False)
    if q is None or d is None:
        end, name = ("input", inp.name) if q is None else ("output", out.name)
        node = _first_op(graph, name, forward=q is None)
        op = f"op {node.op_type} ({node.name})" if node is not None else "no op"
        raise DeployError(
            f"onnx: onnxruntime's static quantizer leaves {op} at the graph's {end} in "
            "float, so the model cannot be fully int8"
        )
    specs = []
    for value, node in ((inp, q), (out, d)):
        scale = float(inits[node.input[1]].reshape(-1)[0])
        zero = int(inits[node.input[2]].reshape(-1)[0]) if len(node.input) > 2 else 0
        shape = tuple(int(x.dim_value) for x in value.type.tensor_type.shape.dim)
        specs.append(TensorSpec(value.name, shape, "int8", scale, zero))
    # The reshapes now move int8 values: the Q's consumers read its input, the DQ's
    # producer writes its output.
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == q.output[0]:
                node.input[i] = q.input[0]
        for i, name in enumerate(node.output):
            if name == d.input[0]:
                node.output[i] = d.output[0]
    for i, value in enumerate(graph.output):
        if value.name == q.output[0]:
            graph.output[i].name = q.input[0]
    graph.node.remove(q)
    graph.node.remove(d)
    del graph.value_info[:]  # the reshapes' recorded float types; onnxruntime infers them
    inp.type.tensor_type.elem_type = _INT8
    out.type.tensor_type.elem_type = _INT8
    return specs[0], specs[1]


def _float_ops(model: Any) -> list[str]:
    """The ops the quantizer left in float: those reading a DequantizeLinear's output and
    not writing a QuantizeLinear's input are computed in float by onnxruntime."""
    graph = model.graph
    deq = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    quant_in = {n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"}
    weights = {t.name for t in graph.initializer}
    left = set()
    for n in graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") or n.op_type in _SHAPE_OPS:
            continue
        reads_float = any(i not in deq and i not in weights and i for i in n.input)
        if reads_float or not all(o in quant_in for o in n.output):
            left.add(n.op_type)
    return sorted(left)


class OnnxRuntime:
    """The ``onnx`` runtime: torch.onnx + onnxruntime's QDQ quantizer; onnxruntime checks."""

    name = NAME
    extra = EXTRA
    requires = ("onnx", "onnxruntime")  # the modules export and check import
    suffix = ".onnx"

    def export(
        self, model: nn.Module, example: torch.Tensor, calibration: Iterable[torch.Tensor]
    ) -> Artifact:
        """Export ``model`` to ONNX and quantize it to QDQ int8 with int8 input and output.

        Args:
            model: the trained float network (eval mode); it is not changed.
            example: one input batch of batch size 1.
            calibration: training batches the activation ranges are calibrated on.

        Returns:
            The ``.onnx`` bytes with their int8 input and output specs.

        Raises:
            DeployError: onnx / onnxruntime are missing, or the network does not export.
        """
        onnx = require("onnx", NAME, EXTRA)
        require("onnxruntime", NAME, EXTRA)
        from onnxruntime.quantization import (
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        try:
            data = _float_onnx(model.eval(), example.cpu()[:1])
        except Exception as exc:
            line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DeployError(f"onnx: torch.onnx cannot export the network: {line}") from exc
        with tempfile.TemporaryDirectory(prefix="sparsemod-onnx-") as tmp:
            src, dst = Path(tmp, "float.onnx"), Path(tmp, "int8.onnx")
            src.write_bytes(data)
            try:
                with _quiet_root(), contextlib.redirect_stdout(io.StringIO()):
                    quantize_static(
                        str(src),
                        str(dst),
                        _Reader("input", calibration),
                        quant_format=QuantFormat.QDQ,
                        per_channel=True,
                        calibrate_method=CalibrationMethod.Percentile,
                        activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8,
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
                    )
            except Exception as exc:
                line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise DeployError(f"onnx: onnxruntime cannot quantize the network: {line}") from exc
            quantized = onnx.load(str(dst))
        inp, out = _int8_io(quantized)
        onnx.checker.check_model(quantized)
        meta = {
            "exporter": f"torch.onnx (TorchScript) opset {_OPSET}",
            "quantizer": "onnxruntime quantize_static, QDQ, per-channel symmetric int8 "
            "weights, int8 per-tensor activations (99.999th percentile)",
            "ops": sorted({n.op_type for n in quantized.graph.node}),
            "float_ops": _float_ops(quantized),
        }
        return Artifact(NAME, self.suffix, quantized.SerializeToString(), (inp,), (out,), meta)

    def check(
        self, artifact: Artifact, data: Iterable[tuple[torch.Tensor, torch.Tensor]]
    ) -> RuntimeReport:
        """Run ``data`` through the model in onnxruntime.

        Args:
            artifact: an ``onnx`` artifact.
            data: (inputs, labels) batches.

        Returns:
            Accuracy and the model's bytes; ``memory_bytes`` is None (see the module
            docstring).

        Raises:
            DeployError: onnxruntime is missing or cannot load or run the model.
        """
        ort = require("onnxruntime", NAME, EXTRA)
        spec = artifact.inputs[0]
        xs, ys = gather(data)
        if tuple(xs.shape[1:]) != spec.shape[1:]:
            raise DeployError(
                f"onnx: the data's samples are {tuple(xs.shape[1:])}, the artifact's input "
                f"is {spec.shape[1:]}"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                artifact.data, options, providers=["CPUExecutionProvider"]
            )
            q = quantize_input(xs, spec)
            name = session.get_inputs()[0].name
            out = np.concatenate(
                [session.run(None, {name: q[i : i + 1]})[0] for i in range(len(q))]
            )
        except Exception as exc:
            line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DeployError(f"onnx: onnxruntime cannot run the model: {line}") from exc
        correct = int((out.reshape(len(out), -1).argmax(1) == ys).sum())
        return RuntimeReport(
            NAME,
            artifact.size_bytes,
            correct / len(ys),
            len(ys),
            memory_bytes=None,
            detail={"onnxruntime": ort.__version__, "ops": list(artifact.meta.get("ops", []))},
        )


RUNTIME = OnnxRuntime()
