"""The one fx tracer and its DeployedLayer protocol."""

from __future__ import annotations

import torch
from torch import nn

from sparsemod.compress.dynamic_int8 import DynamicInt8Linear, DynamicInt8RNN
from sparsemod.compress.static_int8 import QuantizeActivation, StaticInt8Layer
from sparsemod.objectives.tracer import (
    DeployedLayer,
    Tracer,
    is_fusable_root,
    reports_macs,
    symbolic_trace,
    trace,
)


class Packed(nn.Module):
    """A user's layer that is not in torch.nn: fx would trace through it, unless declared."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * 2

    def deployed_tensors(self) -> list[tuple[torch.Tensor, str]]:
        return [(self.inner.weight, "weight")]


class Plain(Packed):
    deployed_tensors = None  # type: ignore[assignment]


def _call_modules(model: nn.Module) -> list[str]:
    return [n.target for n in symbolic_trace(model).graph.nodes if n.op == "call_module"]


def test_a_layer_following_the_protocol_is_one_node():
    assert _call_modules(nn.Sequential(Packed(), nn.ReLU())) == ["0", "1"]


def test_a_layer_without_it_is_traced_through():
    assert isinstance(Packed(), DeployedLayer) and not isinstance(Plain(), DeployedLayer)
    assert _call_modules(nn.Sequential(Plain(), nn.ReLU())) == ["0.inner", "1"]


def test_sparsemods_int8_layers_follow_the_protocol():
    lin, rnn = nn.Linear(4, 3), nn.LSTM(4, 3)
    layers = [
        DynamicInt8Linear(lin),
        DynamicInt8RNN(rnn),
        StaticInt8Layer(lin, relu=False),
        QuantizeActivation(),
    ]
    assert all(isinstance(m, DeployedLayer) for m in layers)
    assert [is_fusable_root(m) for m in layers] == [True, False, True, False]
    assert [reports_macs(m) for m in layers] == [True, True, True, False]
    assert Tracer().is_leaf_module(layers[1], "rnn")


def test_trace_records_shapes_and_dtypes():
    gm = trace(nn.Sequential(Packed()), torch.zeros(2, 4))
    out = [n for n in gm.graph.nodes if n.op == "call_module"][0]
    assert out.meta["sm_tensors"] == [((2, 3), torch.float32)]


def _fx_graph_module(model: nn.Module) -> torch.fx.GraphModule:
    return torch.fx.GraphModule(model, Tracer().trace(model))


def _nodes(gm: torch.fx.GraphModule) -> list[tuple[str, str, object, str]]:
    return [(n.op, n.name, n.target, str(n.args)) for n in gm.graph.nodes]


def test_a_plain_sequential_gets_the_graph_fx_would_trace_without_tracing():
    from sparsemod.evaluate import build_network
    from sparsemod.objectives.tracer import chain_graph
    from sparsemod.problems import get_problem
    from sparsemod.search.encoding import Encoder

    nested = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.Sequential(nn.ReLU(), nn.Sequential(nn.Flatten())), nn.Linear(8, 3)
    )
    models = [nested, nn.Sequential()]
    for name in ("digits_cnn", "digits_mlp"):
        problem = get_problem(name)
        data = problem.load(0)
        for params in Encoder(problem.space).sample(10, 5):
            shape = (tuple(data.input_shape), data.num_classes)
            models.append(build_network(problem, params, splits=None, shape=shape))
    for model in models:
        assert chain_graph(model) is not None
        fast, traced = symbolic_trace(model), _fx_graph_module(model)
        assert fast.code == traced.code
        assert _nodes(fast) == _nodes(traced)
    assert [n.target for n in symbolic_trace(nested).graph.nodes][1:4] == ["0", "1.0", "1.1.0"]
    # anything else is traced: a layer fx traces into, a subclass with its own forward
    assert chain_graph(nn.Sequential(nn.Linear(4, 4), Plain())) is None

    class Doubled(nn.Sequential):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) * 2

    assert chain_graph(Doubled(nn.Linear(4, 4))) is None
    assert "mul" in symbolic_trace(Doubled(nn.Linear(4, 4))).code
    assert _call_modules(nn.Sequential(nn.Linear(4, 4), Plain())) == ["0", "1.inner"]
