"""The hardware objectives, measured on the network as it ships.

Every function here reads a real forward pass (a ``torch.fx`` graph with the shapes and
dtypes recorded while running one input) and counts bytes and multiply-accumulates the
way DESIGN.md defines them. They accept a float model, a pruned model, a model quantized
with PT2E (an exported ``GraphModule`` holding int8 weights) and a model whose layers were
replaced by sparsemod's int8 layers.

One module an objective: :mod:`.size` (model size), :mod:`.memory` (working memory) and
:mod:`.flops` (FLOPs and latency); :mod:`.measure` counts them all from one trace. They
read graphs made by the one tracer, :mod:`.tracer`, which also declares the protocol of
the layers it keeps whole (:class:`~sparsemod.objectives.tracer.DeployedLayer`: sparsemod's
int8 layers report the tensors they store); :mod:`.ops` says how the cost models read a
graph's nodes. The runtime cost models (:mod:`.tflm` and its ``tflm_*`` helpers) read the
same traces.
"""

from __future__ import annotations

from sparsemod.objectives.flops import flops, latency_seconds, rnn_macs
from sparsemod.objectives.measure import measure_all
from sparsemod.objectives.memory import working_memory_bytes
from sparsemod.objectives.size import (
    FLOAT_BITS,
    SCALE_BYTES,
    ZERO_POINT_BYTES,
    index_width,
    model_size_bytes,
    tensor_bytes,
)
from sparsemod.objectives.tracer import DeployedLayer, Tracer, symbolic_trace, trace

__all__ = [
    "FLOAT_BITS",
    "SCALE_BYTES",
    "ZERO_POINT_BYTES",
    "DeployedLayer",
    "Tracer",
    "flops",
    "index_width",
    "latency_seconds",
    "measure_all",
    "model_size_bytes",
    "rnn_macs",
    "symbolic_trace",
    "tensor_bytes",
    "trace",
    "working_memory_bytes",
]
