"""Which runtime's counts the objectives are: ``runtime = tflm`` (default) or ``ideal``.

A :class:`CostModel` turns one network into the hardware objectives of a trial
(``model_size_bytes``, ``working_memory_bytes``, ``flops``, ``latency_s``). The search
predicts a candidate's costs before training and measures them after with the same call,
so predicted and measured are one code path:

* ``tflm``: the network as litert-torch converts it and TensorFlow Lite Micro runs it
  (:mod:`sparsemod.objectives.tflm`). Model size is the ``.tflite`` flatbuffer's bytes
  (metadata, dense int8 weights, int32 biases, per-channel scales: unstructured pruning
  saves nothing); working memory is the smallest arena the interpreter allocates and runs
  in (activations as its planner lays them out, plus its persistent structs and the
  temporaries of preparing). Both depend on the network's structure only, so the value
  predicted before training is the value measured after. An LSTM / GRU network is the
  graph litert-torch unrolls over the sequence (:mod:`.tflm_lstm`, :mod:`.tflm_gru`).
* ``executorch``: the network as ExecuTorch 1.5's Cortex-M (CMSIS-NN) flow exports it
  (:mod:`sparsemod.objectives.executorch_cost`): model size is the ``.pte`` program's
  bytes, working memory the sum of its planned buffers (input, output, activations and
  the CMSIS-NN scratch buffers). Also structural, so predicted equals measured.
* ``ideal``: SpArSe's definitions (:mod:`.size`, :mod:`.memory`): per tensor the cheaper of
  dense and sparse storage, and the peak of live activations, measured on the deployed
  (quantized) network. For research, and for comparison with the SpArSe paper.

With ``compression = lut`` (``tflm`` only) the weights were clustered
(:mod:`sparsemod.compress.cluster`), and :func:`lut_choice` picks the weight tensors whose
LUT compression makes the flatbuffer smaller; flash and arena are then counted for the
compressed model (:mod:`sparsemod.objectives.tflm_lut`: smaller indices and value tables in
flash, the decoded weights in the arena while their layer runs). ``sparsemod.deploy``
compresses the artifact with the same choice.

Latency is ``latency_model = flops`` (FLOPs over the ``flops`` key's rate) or ``ops``
(cycles per MAC per op type on the board's core, :mod:`.latency`), either way a model,
never a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sparsemod.combinations import check_runtime
from sparsemod.compress.cluster import int8_distinct, layer_width
from sparsemod.compress.rnn_int8 import RnnInt8, is_static_rnn
from sparsemod.core.boards import Board
from sparsemod.errors import BuildError, CompressionError, MeasureError
from sparsemod.objectives.executorch_cost import program_costs
from sparsemod.objectives.executorch_plan import Program
from sparsemod.objectives.executorch_plan import lower as lower_program
from sparsemod.objectives.flops import graph_flops, latency_seconds
from sparsemod.objectives.latency import ops_latency
from sparsemod.objectives.measure import measure_all
from sparsemod.objectives.tflm import graph_costs
from sparsemod.objectives.tflm_graph import Graph, lower
from sparsemod.objectives.tflm_gru import gru_costs, lower_gru
from sparsemod.objectives.tflm_lstm import lower_lstm, lstm_costs
from sparsemod.objectives.tflm_lut import LUT_OPS, Lut, lut_costs
from sparsemod.objectives.tracer import trace
from sparsemod.settings import check_setting, default


@dataclass(frozen=True)
class CostModel:
    """How a network's hardware objectives are counted.

    Args:
        runtime: ``tflm``, ``executorch`` or ``ideal`` (see the module docstring).
        latency_model: ``flops`` (FLOPs / ``target_flops``) or ``ops`` (the board's core).
        target_flops: operations per second, for ``latency_model = flops``.
        board: the device, needed for ``latency_model = ops``.
        compression: ``none`` or ``lut`` (TFLM's LUT-compressed weights; ``tflm`` only).
    """

    runtime: str = default("runtime")
    latency_model: str = default("latency_model")
    target_flops: float = default("flops")
    board: Board | None = None
    compression: str = default("compression")

    def __post_init__(self) -> None:
        check_setting("runtime", self.runtime)
        check_setting("compression", self.compression)
        check_setting("latency_model", self.latency_model)
        check_setting("flops", self.target_flops)
        check_runtime(
            self.runtime, None, self.latency_model, self.board, compression=self.compression
        )

    def check_scheme(self, quant_scheme: str) -> None:
        """Refuse what the cost model cannot count (:func:`~sparsemod.combinations.check_runtime`).

        Raises:
            ConfigError: ``runtime = tflm`` with ``quant_scheme`` ``none`` or ``dynamic``,
                or ``latency_model = ops`` without a board.
        """
        check_runtime(self.runtime, quant_scheme, self.latency_model, self.board)

    def costs(
        self,
        float_model: nn.Module,
        deployed: nn.Module,
        example: torch.Tensor,
        *,
        int8_layers: tuple[type[nn.Module], ...] = (),
        activation_bytes: int | None = None,
        extra_size_bytes: int = 0,
        lut_bits: int = 0,
    ) -> dict[str, float]:
        """The hardware objectives of one network, keyed as in a ``TrialResult``.

        Args:
            float_model: the pruned float network (what the runtime's converter reads).
            deployed: the network as sparsemod quantized it (what ``ideal`` counts); its
                ``int8_layers``, ``activation_bytes`` and ``extra_size_bytes`` are as in
                a quantization scheme's predicted layout.
            example: one input (batch 1).
            lut_bits: under ``compression = lut``, the candidate's ``lut_bits`` (its weights
                clustered); 0: no LUT.

        Raises:
            BuildError: the runtime cannot run the network (a layer its converter does not
                take to int8, e.g. an LSTM under TFLM); the candidate is not trained.
            MeasureError: the network cannot be traced.
        """
        graph = self._graph(float_model, example) if self._lowers else None
        recurrent = is_static_rnn(float_model)
        if self.runtime == "ideal":
            if isinstance(deployed, RnnInt8):
                raise CompressionError(
                    "quant_scheme: 'post' quantizes an LSTM or GRU network as TFLM runs it, which "
                    f"runtime = {self.runtime} does not count; set runtime = tflm, or "
                    "quant_scheme = both or dynamic"
                )
            costs = measure_all(
                deployed,
                example,
                self.target_flops,
                int8_layers=int8_layers,
                activation_bytes=activation_bytes,
            )
            costs["model_size_bytes"] += extra_size_bytes
        else:
            if self.runtime == "executorch":
                program = self._program(float_model, example)
                pte = program_costs(program)
                size, memory, traced = pte.pte_bytes, pte.planned_bytes, program.traced
            else:
                lut = self.compression == "lut" and lut_bits and not recurrent
                luts = lut_choice(graph, float_model, lut_bits) if lut else []
                tflm = (_RNN[_cell(float_model)][1](graph) if recurrent
                        else lut_costs(graph, luts) if luts
                        else graph_costs(graph))  # fmt: skip
                size, memory, traced = tflm.flatbuffer_bytes, tflm.arena_bytes, graph.traced
            f = graph_flops(traced)
            costs = {
                "model_size_bytes": size,
                "working_memory_bytes": memory,
                "flops": f,
                "latency_s": latency_seconds(f, self.target_flops),
            }
        if self.latency_model == "ops":
            costs["latency_s"] = ops_latency(graph, self.board)
        return costs

    def check_deploys(self, model: nn.Module, example: torch.Tensor) -> None:
        """Raise BuildError when the runtime cannot run ``model`` (the float network)."""
        if self.runtime == "tflm":
            self._graph(model, example)
        elif self.runtime == "executorch":
            self._program(model, example)

    @property
    def _lowers(self) -> bool:
        return self.runtime == "tflm" or self.latency_model == "ops"

    def _program(self, model: nn.Module, example: torch.Tensor) -> Program:
        try:
            return lower_program(model, example)
        except MeasureError as exc:
            raise BuildError(
                f"the network does not deploy to ExecuTorch for Cortex-M ({exc}); set "
                "runtime = ideal to search it with sparsemod's own counts"
            ) from None

    def _graph(self, model: nn.Module, example: torch.Tensor) -> Graph:
        try:
            if is_static_rnn(model):  # the graph litert unrolls and AI Edge Quantizer writes
                graph = _RNN[_cell(model)][0](model, example)
                graph.traced = trace(model, example)
                return graph
            return lower(model, example)
        except MeasureError as exc:
            raise BuildError(
                f"the network does not deploy to TFLM ({exc}); set runtime = ideal and "
                "latency_model = flops to search it with sparsemod's own counts"
            ) from None


# A recurrent network's TFLM graph and costs, by its cell (litert unrolls each differently).
_RNN = {nn.LSTM: (lower_lstm, lstm_costs), nn.GRU: (lower_gru, gru_costs)}


def _cell(model: nn.Module) -> type[nn.Module]:
    return type(model[0].rnn)


def lut_choice(graph: Graph, model: nn.Module, bits: int) -> list[Lut]:
    """The weight tensors to LUT-compress under ``lut_bits = bits``, with their index widths.

    A weight of a conv, depthwise conv or fully connected op is compressed when
    :func:`~sparsemod.compress.cluster.layer_width` says so from its shape (the layers
    clustering shared), with that many index bits and a value table as long as its fullest
    channel's distinct int8 values (:func:`~sparsemod.compress.cluster.int8_distinct`).
    ``sparsemod.deploy.tflite_lut`` decides the same from the flatbuffer.

    Args:
        graph: the network lowered (:func:`~sparsemod.objectives.tflm_graph.lower`).
        model: the float network it was lowered from, weights clustered.
        bits: the candidate's ``lut_bits``.

    Returns:
        The compressed tensors, in op order (empty: none is worth compressing).
    """
    chosen: list[Lut] = []
    for op in graph.ops:
        if op.kind not in LUT_OPS:
            continue
        tensor = graph.tensors[op.inputs[1]]
        tables = tensor.shape[tensor.qdim]
        width = layer_width(tensor.data, tensor.data // tables, tables, bits)
        if width is None:
            continue
        stride = int8_distinct(model.get_submodule(op.layer).weight)
        if stride <= 2**width:
            chosen.append(Lut(op.inputs[1], width, stride, tables, tensor.qdim))
    return chosen
