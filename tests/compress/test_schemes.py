"""Quantization schemes as classes behind one registry (apply, predict_layout, save / load)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import fx, nn

import sparsemod.evaluate
from sparsemod.compress.dynamic_int8 import DynamicInt8Linear
from sparsemod.compress.quantize import SCHEMES, get_scheme
from sparsemod.compress.scheme import QuantLayout, QuantScheme
from sparsemod.compress.static_int8 import StaticInt8Layer
from sparsemod.core.results import ModelArtifact
from sparsemod.errors import ConfigError
from sparsemod.settings import QUANT_SCHEMES

LINEARS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)
    ).eval()


class _Rnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn, self.head = nn.LSTM(4, 8, batch_first=True), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


def test_the_registry_holds_exactly_the_declared_names():
    assert tuple(SCHEMES) == QUANT_SCHEMES
    assert all(issubclass(cls, QuantScheme) and cls.name == n for n, cls in SCHEMES.items())


def test_an_unknown_scheme_is_named_with_its_key():
    with pytest.raises(ConfigError, match="'int4' is not one of") as err:
        get_scheme("int4")
    assert err.value.key == "quant_scheme"


def test_the_evaluator_branches_on_no_scheme_name():
    tree = ast.parse(Path(sparsemod.evaluate.__file__).read_text())
    compared = [
        c.value
        for n in ast.walk(tree)
        if isinstance(n, (ast.Compare, ast.Dict, ast.Subscript))
        for c in ast.walk(n)
        if isinstance(c, ast.Constant)
    ]
    assert not set(compared) & set(QUANT_SCHEMES)


def test_layouts_predict_from_the_float_network():
    m, x = _cnn(), torch.zeros(1, 1, 8, 8)
    assert get_scheme("none").predict_layout(m, x) == QuantLayout(m)
    assert get_scheme("dynamic").predict_layout(m, x) == QuantLayout(
        m, (nn.Linear, nn.LSTM, nn.GRU)
    )
    # a (scale, zero point) of 5 B for the input and for the conv's output
    post = QuantLayout(m, LINEARS, activation_bytes=1, extra_size_bytes=2 * 5)
    assert get_scheme("post").predict_layout(m, x) == post
    assert get_scheme("both").predict_layout(m, x) == post  # no RNN: both is post


def test_both_with_an_rnn_predicts_from_the_network_quantized_for_real():
    m, x = _Rnn().eval(), torch.zeros(1, 5, 4)
    layout = get_scheme("both").predict_layout(m, x)
    assert isinstance(layout.model, fx.GraphModule)
    assert isinstance(layout.model.get_submodule("head"), StaticInt8Layer)
    assert (layout.int8_layers, layout.activation_bytes, layout.extra_size_bytes) == ((), None, 0)
    assert isinstance(m.head, nn.Linear)  # the float network is left as it was


@pytest.mark.parametrize("name", ["none", "dynamic"])
def test_state_dict_artifacts_load_back_into_the_builders_network(name):
    m, x = _cnn(), torch.randn(2, 1, 8, 8)
    scheme = get_scheme(name)
    deployed = scheme.apply(m, [x], x[:1])
    fmt, data = scheme.save(deployed, x[:1])
    assert fmt == "state_dict"
    artifact = ModelArtifact(fmt, data, {}, (1, 8, 8), 10, name)
    back = scheme.load(artifact, _cnn)
    assert isinstance(back[3], DynamicInt8Linear) == (name == "dynamic")
    assert torch.equal(back(x), deployed(x))


def test_an_unknown_artifact_format_is_refused():
    artifact = ModelArtifact("pickle", b"", {}, (1, 8, 8), 10, "none")
    with pytest.raises(ConfigError, match="'pickle' is not one of exported, state_dict, rnn_int8"):
        get_scheme("none").load(artifact, _cnn)
