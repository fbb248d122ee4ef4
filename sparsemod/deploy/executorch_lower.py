"""The Cortex-M lowering behind :mod:`sparsemod.deploy.executorch`: float network -> int8
``.pte``.

The steps are ExecuTorch 1.5's own Cortex-M flow (see that module's docstring):
``torch.export`` with a channels-last input, ``CortexMQuantizer`` (PT2E), ``to_edge``,
int8 input/output (``QuantizeInputs`` / ``QuantizeOutputs``), ``CortexMPassManager``,
``to_executorch``. The network is traced with a free batch size where it allows, so the
calibration runs whole batches; one that only traces at batch 1 is calibrated sample by
sample. executorch is imported inside the functions only.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sparsemod.deploy.base import DeployError, TensorSpec, require

NAME = "executorch"
EXTRA = "executorch"
DEFAULT_CPU = "M4"


@dataclass
class Lowered:
    """Every stage of one export, for callers that want more than the bytes.

    Attributes:
        quantized: the PT2E int8 graph (``convert_pt2e``), runnable in torch.
        program: the Cortex-M program after the passes, in the edge dialect; its
            ``module()`` runs the ``cortex_m::`` operators' Python reference kernels.
        pte: the Cortex-M ``.pte``.
        host_pte: the same quantized graph before the Cortex-M passes, as a ``.pte`` the
            host runtime runs.
        inputs: the program's input specs.
        outputs: the program's output specs.
        scratch_bytes: the CMSIS-NN scratch buffers the passes sized, per operator.
        buffers: the planned non-constant buffer sizes of ``forward``, as ExecuTorch's
            program manager holds them before serialising (index 0 is reserved, empty).
        cpu: the Cortex-M core it was lowered for.
    """

    quantized: torch.fx.GraphModule
    program: Any
    pte: bytes
    host_pte: bytes
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    scratch_bytes: dict[str, int]
    buffers: list[int]
    cpu: str


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    # .to, not .contiguous: with one channel an NCHW tensor already counts as channels-last
    # contiguous, and .contiguous would keep its NCHW strides, which the quantizer refuses.
    return x.to(memory_format=torch.channels_last) if x.dim() == 4 else x.contiguous()


def cortex_m_quantizer() -> Any:
    """ExecuTorch's ``CortexMQuantizer``, its int8 weights in -127..127.

    The stock configs let symmetric weights take -128..127 (scale ``max|w| / 127.5``);
    narrowed to -127..127 (``max|w| / 127``, TFLite's int8 rule, which CMSIS-NN follows)
    they are the int8 values sparsemod scored, and the re-quantized network strays less
    from the scored accuracy (a tiny digits CNN: 2 test samples in 270 where -128..127
    gave 8). Activations keep the stock histogram observers. The quantizer's own pattern
    matching, node finders and ``transform_for_annotation`` are unchanged.

    Returns:
        The quantizer.
    """
    import dataclasses

    from executorch.backends.cortex_m.quantizer import quantization_configs as configs
    from executorch.backends.cortex_m.quantizer.quantizer import CortexMQuantizer

    def narrow(config: Any) -> Any:
        weight = dataclasses.replace(config.weight, quant_min=-127, quant_max=127)
        return dataclasses.replace(config, weight=weight, label=f"{config.label} -127..127")

    quantizer = CortexMQuantizer(per_tensor_config=narrow(configs.INT8_PER_TENSOR_CONFIG))
    convs = quantizer.quantizers[0]  # the per-channel one, for the convolutions
    if getattr(convs, "quantization_config", None) is not configs.INT8_PER_CHANNEL_CONFIG:
        raise DeployError(f"{NAME}: this executorch's CortexMQuantizer is not the one of 1.5")
    convs.quantization_config = narrow(configs.INT8_PER_CHANNEL_CONFIG)
    return quantizer


def _quantize(model: nn.Module, example: torch.Tensor, calibration: Iterable[torch.Tensor]):
    """The network as a PT2E int8 graph with ExecuTorch's Cortex-M quantizer."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    # Traced with a free batch size, so calibration runs whole batches; a network that only
    # traces at batch 1 is calibrated one sample at a time (running it on another batch
    # size can crash torch's kernels, e.g. an LSTM's initial state, not just raise).
    # check_guards=False: no _guards_fn call_module node, which the Cortex-M passes refuse.
    pair = example.repeat(2, *[1] * (example.dim() - 1))
    try:
        batch_dim = ({0: torch.export.Dim("batch", min=1)},)
        graph = torch.export.export(model, (_channels_last(pair),), dynamic_shapes=batch_dim)
        batched = True
    except Exception:
        try:
            graph = torch.export.export(model, (example,))
        except Exception as exc:
            raise DeployError(
                f"{NAME}: torch.export cannot trace the network: {_last(exc)}"
            ) from None
        batched = False
    prepared = prepare_pt2e(graph.module(check_guards=False), cortex_m_quantizer())
    seen = 0
    with torch.no_grad():
        for batch in calibration:
            batch = torch.as_tensor(batch).detach().cpu().float()
            for x in [batch] if batched else batch.split(1):
                prepared(_channels_last(x))
            seen += 1
    if not seen:
        raise DeployError(f"{NAME}: calibration needs at least one input batch")
    quantized = convert_pt2e(prepared)
    for m in quantized.modules():  # exported in eval mode; only the flag is left to set
        m.training = False
    return quantized


def _last(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _edge(quantized: torch.fx.GraphModule, example: torch.Tensor):
    """The quantized graph in the edge dialect, with int8 input and output where the graph
    starts with a quantize and ends with a dequantize (it does when every op is quantized).

    Returns:
        ``(edge program manager, input qparams or None, output qparams or None)``.
    """
    import executorch.exir as exir
    from executorch.backends.cortex_m.edge_compile_config import cortex_m_edge_compile_config
    from executorch.exir.passes.quantize_io_pass import QuantizeInputs, QuantizeOutputs

    exported = torch.export.export(quantized, (example,))
    edge = exir.to_edge(exported, compile_config=cortex_m_edge_compile_config())
    qparams: list[tuple | None] = []
    for make in (QuantizeInputs, QuantizeOutputs):
        # No program manager: the passes would also add ten constant methods holding the
        # input/output qparams (2.4 KB of a 23 KB program); the artifact's specs hold them.
        rewrite = make(None, [0], exported_program=edge.exported_program())
        try:
            edge = edge.transform([rewrite])
        except Exception:  # the edge op is not a quantize/dequantize: that side stays float
            qparams.append(None)
        else:
            found = getattr(rewrite, "quant_args", None) or rewrite.dequant_args
            qparams.append(tuple(found[0]))
    return edge, qparams[0], qparams[1]


def _spec(name: str, shape: tuple[int, ...], qparams: tuple | None) -> TensorSpec:
    if qparams is None:
        return TensorSpec(name, shape, "float32")
    scale, zero_point = float(qparams[0]), int(qparams[1])
    return TensorSpec(name, shape, str(qparams[4]).removeprefix("torch."), scale, zero_point)


def _drop_unused_constants(program: Any) -> list[str]:
    """Remove the parameters, buffers and constants no node reads (the passes leave the
    ones they replaced behind), so they are not serialised into the ``.pte``."""
    from torch.export.exported_program import InputKind

    kinds = (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR)
    nodes = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    unused = [
        s
        for s in program.graph_signature.input_specs
        if s.kind in kinds and not nodes[s.arg.name].users
    ]
    for s in unused:
        program.graph_signature.input_specs.remove(s)
        store = program._state_dict if s.target in program._state_dict else program._constants
        store.pop(s.target, None)
        program.graph.erase_node(nodes[s.arg.name])
    program.graph_module.recompile()
    return [str(s.target) for s in unused]


def layer_of(node: Any) -> str:
    """The torch layer an edge-dialect node came from (its ``nn_module_stack``), or ``?``."""
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        path, kind = list(stack.values())[-1]
        kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
        return f"{path} ({kind.rsplit('.', 1)[-1]})"
    return "?"


def _op_name(node: Any) -> str:
    target = node.target
    schema = getattr(target, "_schema", None)
    return str(schema.name) if schema is not None else getattr(target, "__name__", str(target))


def _check_int8(program: Any) -> None:
    """Every operator of the lowered program must be a ``cortex_m::`` one (CMSIS-NN) or a
    layout copy of an int8 tensor. Otherwise the first layer with a float op is named, with
    its float ops in order."""
    left: dict[str, list[str]] = {}
    for node in program.graph.nodes:
        if node.op != "call_function" or not hasattr(node.target, "_schema"):
            continue
        name = _op_name(node)
        val = node.meta.get("val")
        values = val if isinstance(val, (list, tuple)) else [val]
        dtypes = {v.dtype for v in values if isinstance(v, torch.Tensor)}
        if name.startswith("cortex_m::") or dtypes <= {torch.int8}:
            continue
        ops = left.setdefault(layer_of(node), [])
        if name not in ops:
            ops.append(name)
    if left:
        layer, ops = next(iter(left.items()))
        raise DeployError(
            f"{NAME}: the Cortex-M backend has no int8 kernel for layer {layer}: its ops "
            f"{', '.join(ops)} stay in float"
        )


def _scratch(program: Any) -> dict[str, int]:
    from executorch.exir import memory

    sizes: dict[str, int] = {}
    for node in program.graph.nodes:
        if node.op == "call_function" and node.target is not memory.alloc:
            for arg in node.args:
                if getattr(arg, "target", None) is memory.alloc:
                    sizes[node.name] = sizes.get(node.name, 0) + int(arg.args[0][0][0])
    return sizes


def lower(
    model: nn.Module,
    example: torch.Tensor,
    calibration: Iterable[torch.Tensor],
    cpu: str = DEFAULT_CPU,
) -> Lowered:
    """Quantize ``model`` with the Cortex-M quantizer and lower it to a ``.pte``.

    Args:
        model: the trained float network (eval mode); it is not changed.
        example: one input batch of batch size 1.
        calibration: training batches the activation ranges are calibrated on.
        cpu: the Cortex-M core (``M0`` ... ``M85``); it picks the CMSIS-NN kernels whose
            scratch buffers the program plans.

    Returns:
        Every stage (see :class:`Lowered`).

    Raises:
        DeployError: executorch is missing, the network does not export, an op stays in
            float (named with its layer), or ``cpu`` is not a Cortex-M core.
    """
    require("executorch.exir", NAME, EXTRA)
    from executorch.backends.cortex_m.passes.cortex_m_pass_manager import CortexMPassManager
    from executorch.backends.cortex_m.target_config import CortexM, CortexMTargetConfig

    if cpu not in CortexM.__members__:
        raise DeployError(f"{NAME}: cpu {cpu!r} is not one of {', '.join(CortexM.__members__)}")
    example = torch.as_tensor(example).detach().cpu().float()[:1]
    nhwc = _channels_last(example)
    quantized = _quantize(copy_eval(model), nhwc, calibration)
    try:
        edge, q_in, q_out = _edge(quantized, nhwc)
        passes = CortexMPassManager(
            edge.exported_program(), target_config=CortexMTargetConfig(cpu=CortexM[cpu])
        )
        program = passes.transform()
    except DeployError:
        raise
    except Exception as exc:
        raise DeployError(f"{NAME}: the Cortex-M lowering failed: {_last(exc)}") from None
    _check_int8(program)
    _drop_unused_constants(program)
    reference = copy.deepcopy(program)  # to_executorch rewrites the graph in place
    try:
        # The lowered program replaces the edge one, as ExecuTorch's Cortex-M test harness
        # does (RunPasses), and is serialised with its memory plan.
        edge._edge_programs["forward"] = program
        manager = edge.to_executorch()
        # The host variant: the same quantized graph in plain NCHW (the portable kernels
        # take the weights in their default dim order).
        host_pte = bytes(_edge(quantized, example.contiguous())[0].to_executorch().buffer)
    except Exception as exc:
        raise DeployError(f"{NAME}: to_executorch failed: {_last(exc)}") from None
    forward = next(p for p in manager.executorch_program.execution_plan if p.name == "forward")
    out_val = list(reference.graph.output_node().args[0])[0].meta["val"]
    inputs = (_spec("input", tuple(example.shape), q_in),)
    outputs = (_spec("output", tuple(out_val.shape), q_out),)
    buffers = [int(b) for b in forward.non_const_buffer_sizes]
    scratch = _scratch(reference)
    pte = bytes(manager.buffer)
    return Lowered(quantized, reference, pte, host_pte, inputs, outputs, scratch, buffers, cpu)


def copy_eval(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode, on the CPU (the caller's model is not changed)."""
    return copy.deepcopy(model).cpu().eval()
