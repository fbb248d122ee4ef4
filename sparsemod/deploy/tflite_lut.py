"""``compression = lut`` on a ``.tflite`` artifact: TFLM's LUT compressor.

The search clustered each output channel's weights to ``2**lut_bits`` values
(:mod:`sparsemod.compress.cluster`) and counted the compressed model
(:func:`sparsemod.objectives.runtime.lut_choice`, :mod:`sparsemod.objectives.tflm_lut`).
:func:`compress_lut` makes the same choice from the flatbuffer's weights (by shape and
``lut_bits``, :func:`~sparsemod.compress.cluster.layer_width`; the value tables as long as
the fullest channel's distinct int8 values) and
compresses those weights per output channel with ``tflite_micro``'s own compressor: each
becomes packed indices with a value table per channel beside them, and a ``TFLM_DECODE``
op before its layer decodes it into the arena while the layer runs (TFLM's interpreter
has the kernel built in).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import replace

import numpy as np

from sparsemod.compress.cluster import layer_width
from sparsemod.deploy.base import Artifact, DeployError, require
from sparsemod.deploy.tflite_quantize import EXTRA, NAME
from sparsemod.objectives.tflm_lut import LUT_OPS


def compress_lut(artifact: Artifact, bits: int) -> Artifact:
    """The artifact with the weights worth it LUT-compressed.

    Args:
        artifact: a ``tflite`` artifact of a network whose weights were clustered.
        bits: the trial's ``lut_bits``.

    Returns:
        The compressed artifact (``meta["lut"]`` lists each tensor, its layer, index bits
        and values per channel), or ``artifact`` unchanged when no weight is worth it.

    Raises:
        DeployError: tflite-micro is missing, or its compressor refuses the model.
    """
    require("tflite_micro", NAME, EXTRA)
    from tflite_micro.tensorflow.lite.micro.compression import (
        SpecBuilder,
        compress,
        model_editor,
        spec,
    )
    from tflite_micro.tensorflow.lite.micro.compression.compressor import CompressionError

    from sparsemod.deploy.tflite import layer_of, operators

    graph = model_editor.read(artifact.data).subgraphs[0]
    index = {id(t): i for i, t in enumerate(graph.tensors)}
    builder = SpecBuilder()
    chosen = []
    for op, listed in zip(graph.operators, operators(artifact.data)):
        if listed["op"] not in LUT_OPS or len(op.inputs) < 2 or op.inputs[1] is None:
            continue
        weight = op.inputs[1]
        values = weight.array
        if values is None or values.dtype != np.int8:
            continue
        axis = values.ndim - 1 if listed["op"] == "DEPTHWISE_CONV_2D" else 0
        tables = values.shape[axis]
        width = layer_width(values.size, values.size // tables, tables, bits)
        if width is None:
            continue
        channels = np.moveaxis(values, axis, 0).reshape(tables, -1)
        stride = max(len(np.unique(c)) for c in channels)
        if stride > 2**width:
            continue  # not clustered: the search counted it dense too
        builder.add_tensor(0, index[id(weight)]).with_lut(width, spec.PerChannel(axis))
        chosen.append({"tensor": index[id(weight)], "layer": listed["layer"]
                       or layer_of(weight.name or ""), "bits": width,
                       "values_per_channel": stride})  # fmt: skip
    if not chosen:
        return artifact
    # The compressor warns (and prints) when a layer needs fewer bits than given.
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            data = bytes(compress(artifact.data, builder.build()))
        except CompressionError as exc:
            raise DeployError(f"tflite: TFLM's LUT compressor refused the model: {exc}") from None
    meta = {**artifact.meta, "lut": chosen, "ops": [o["op"] for o in operators(data)]}
    return replace(artifact, data=data, meta=meta)
