"""The one ``torch.fx`` tracer: what the cost models and the graph rewrites read.

Every graph sparsemod reads (to measure a network, to quantize it with ``both``, to follow
the channels of ``l1_structured``) comes from :class:`Tracer`. Like ``torch.fx``'s own, it
keeps ``torch.nn`` layers as single nodes; it also keeps whole every layer that follows
the :class:`DeployedLayer` protocol, which is how sparsemod's int8 layers
(:mod:`sparsemod.compress.dynamic_int8`, :mod:`sparsemod.compress.static_int8`) tell the
cost models what they store and compute.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import fx, nn

from sparsemod.errors import MeasureError

# What a stored tensor is, as a DeployedLayer reports it: it sets the bytes it costs.
TENSOR_ROLES = ("weight", "bias", "scale", "zero_point")


@runtime_checkable
class DeployedLayer(Protocol):
    """A layer stored and run as the board runs it; the tracer keeps it as one node.

    Required:

    * ``deployed_tensors()``: every tensor the layer stores, each with its role, one of
      :data:`TENSOR_ROLES`. A ``weight`` is stored as small as its zeros allow (dense, or
      sparse with a bitmask or CSR), a ``bias`` dense, a ``scale`` in 4 bytes an element
      and a ``zero_point`` in 1. A (scale, zero point) pair of an activation is reported
      once, by the layer that writes the activation.

    Optional, read with :func:`reports_macs` and :func:`is_fusable_root`:

    * ``macs(in_shape) -> int``: multiply-accumulates for an input of that shape (a layer
      without it counts none);
    * ``fusable_root = True``: batch norm and activations that follow the layer are fused
      into it, as into a conv / linear, and take no memory of their own.
    """

    def deployed_tensors(self) -> list[tuple[torch.Tensor, str]]:
        """Every tensor the layer stores, with its role (see the class docstring)."""
        ...


def reports_macs(m: nn.Module) -> bool:
    """Whether ``m`` counts its own multiply-accumulates with ``macs(in_shape)``."""
    return hasattr(m, "macs")


def is_fusable_root(m: nn.Module) -> bool:
    """Whether ``m`` declares that the batch norm and activations after it fuse into it."""
    return bool(getattr(m, "fusable_root", False))


class Tracer(fx.Tracer):
    """Keeps ``torch.nn`` layers and every :class:`DeployedLayer` as single graph nodes."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        """Whether ``m`` stays one node: a deployed layer or a ``torch.nn`` layer."""
        return isinstance(m, DeployedLayer) or super().is_leaf_module(m, qualname)


def symbolic_trace(model: nn.Module) -> fx.GraphModule:
    """The graph module of ``model`` as :class:`Tracer` traces it (no input is run).

    A plain ``nn.Sequential`` of leaf layers (what the built-in builders return) gets the
    graph :class:`Tracer` would record, written directly (:func:`chain_graph`): a third
    of the cost of a candidate's costs went to tracing.

    Raises:
        Exception: whatever ``torch.fx`` raises on a model it cannot trace (many kinds);
            callers name the reason in their own domain error.
    """
    graph = chain_graph(model)
    return fx.GraphModule(model, graph if graph is not None else Tracer().trace(model))


def chain_graph(model: nn.Module) -> fx.Graph | None:
    """The graph of a plain ``nn.Sequential`` whose layers are all leaves, or ``None``.

    ``nn.Sequential.forward`` calls its layers in order on ``input``; nested plain
    ``nn.Sequential`` s are walked into, as fx does. Anything else (a subclass, a layer
    :class:`Tracer` would trace into) gives ``None``: trace it.
    """
    if type(model) is not nn.Sequential:
        return None
    tracer, calls = Tracer(), []

    def walk(seq: nn.Module, prefix: str) -> bool:
        for name, child in seq.named_children():
            qualname = prefix + name
            if type(child) is nn.Sequential:
                if not walk(child, qualname + "."):
                    return False
            elif tracer.is_leaf_module(child, qualname):
                calls.append(qualname)
            else:
                return False
        return True

    if not walk(model, ""):
        return None
    graph = fx.Graph()
    value = graph.placeholder("input")
    for qualname in calls:
        value = graph.call_module(qualname, (value,))
    graph.output(value)
    return graph


class _Recorder(fx.Interpreter):
    """Runs the graph once and keeps each node's output shapes and dtypes."""

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        n.meta["sm_tensors"] = [(tuple(t.shape), t.dtype) for t in _tensors_in(out)]
        return out


def _tensors_in(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors_in(v)]
    return []


def trace(model: nn.Module, example_input: torch.Tensor | None = None) -> fx.GraphModule:
    """The fx graph sparsemod measures, with shapes recorded when an input is given.

    Args:
        model: any model; an ``fx.GraphModule`` (for example a PT2E model) is used as is.
        example_input: one input with its batch dimension; run through the graph once.

    Returns:
        The graph module; each node's ``meta["sm_tensors"]`` lists (shape, dtype) of its
        output tensors when ``example_input`` was given.

    Raises:
        MeasureError: torch.fx cannot trace the model.
        Exception: whatever the model's forward raises on the input (a network that does
            not run is a bug in it, not a measurement to fail).
    """
    if isinstance(model, fx.GraphModule):
        gm = model
    else:
        try:
            gm = symbolic_trace(model)
        except Exception as exc:  # fx raises many kinds; the user needs the reason
            raise MeasureError(
                f"{type(model).__name__} cannot be traced by torch.fx ({exc}); sparsemod "
                "needs a forward without control flow on tensor values to measure it"
            ) from exc
    if example_input is not None:
        # Exported (PT2E) models refuse .eval(); they are already in inference form.
        toggle = not isinstance(model, fx.GraphModule)
        was_training = model.training
        if toggle:
            model.eval()
        try:
            with torch.inference_mode():
                _Recorder(gm).run(example_input.to(_device_of(model)))
        finally:
            if toggle:
                model.train(was_training)
    return gm


def _device_of(model: nn.Module) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")
