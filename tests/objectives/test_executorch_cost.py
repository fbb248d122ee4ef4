"""ExecuTorch (Cortex-M) costs computed from the float network agree with the real export.

``executorch_costs`` predicts the ``.pte``'s bytes and its planned memory without
executorch; each network here is exported once by ``sparsemod.deploy.executorch`` (the
tests against it skip when executorch is not installed) and the two are compared within
max(1 %, 64 B). On these networks both figures are exact; a data-dependent quantization
scalar that comes out 0 (8 bytes fewer) is what the tolerance is for.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from sparsemod.builders import build_cnn, build_mlp, cnn_space, mlp_space
from sparsemod.errors import MeasureError
from sparsemod.objectives.executorch_cost import executorch_costs
from sparsemod.search.encoding import Encoder

HAVE_EXECUTORCH = importlib.util.find_spec("executorch") is not None
needs_executorch = pytest.mark.skipif(
    not HAVE_EXECUTORCH, reason='the real export needs pip install "sparsemod[executorch]"'
)
IMAGE, FLAT = (1, 1, 8, 8), (1, 8, 8)


def _networks() -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    torch.manual_seed(0)
    cs, ms = cnn_space(), mlp_space()
    dw = dict(cs.reference, b1_filters=8, b2_type="depthwise", b2_filters=24, b2_kernel=5)
    avg = dict(cs.reference, b1_pool="avg", b2_pool="avg", num_fc=2, fc2_units=20)
    nets = {
        "cnn_reference": (build_cnn(cs.reference, IMAGE[1:], 10), IMAGE),
        "mlp_reference": (build_mlp(ms.reference, FLAT[1:], 10), FLAT),
        "cnn_depthwise": (build_cnn(dw, IMAGE[1:], 10), IMAGE),
        "cnn_avg_pool": (build_cnn(avg, IMAGE[1:], 10), IMAGE),
    }
    for seed in range(3):
        nets[f"cnn_random{seed}"] = (
            build_cnn(cs.validate(Encoder(cs).sample(1, seed)[0]), IMAGE[1:], 10),
            IMAGE,
        )
        nets[f"mlp_random{seed}"] = (
            build_mlp(ms.validate(Encoder(ms).sample(1, seed)[0]), FLAT[1:], 10),
            FLAT,
        )
    return nets


NETWORKS = _networks()


def _model(name: str) -> tuple[nn.Module, torch.Tensor, list[torch.Tensor]]:
    model, shape = NETWORKS[name]
    torch.manual_seed(0)
    for m in model.modules():  # batch norm statistics that are not the identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    g = torch.Generator().manual_seed(1)
    return (
        model.eval(),
        torch.randn(*shape, generator=g),
        [torch.randn(32, *shape[1:], generator=g)],
    )


@pytest.fixture(scope="module")
def exported() -> dict:
    """Each network's real export, made once, when a test first asks for it."""
    return {}


def _export(cache: dict, name: str) -> tuple[int, int]:
    if name not in cache:
        from sparsemod.deploy import get_runtime
        from sparsemod.deploy.executorch import plan

        model, example, calibration = _model(name)
        artifact = get_runtime("executorch").export(model, example, calibration)
        cache[name] = (artifact.size_bytes, sum(plan(artifact.data)["buffers"]))
    return cache[name]


def _close(predicted: int, measured: int) -> bool:
    return abs(predicted - measured) <= max(0.01 * measured, 64)


@needs_executorch
@pytest.mark.parametrize("name", list(NETWORKS))
def test_agrees_with_the_real_export(name: str, exported: dict) -> None:
    pte, planned = _export(exported, name)
    model, example, _ = _model(name)
    costs = executorch_costs(model, example)
    assert _close(costs.pte_bytes, pte), (name, costs.pte_bytes, pte)
    assert _close(costs.planned_bytes, planned), (name, costs.planned_bytes, planned)
    parts = costs.parts
    assert parts["constants"] + parts["program"] == costs.pte_bytes
    assert parts["activations"] + parts["scratch"] == costs.planned_bytes


def test_hand_count_of_one_linear() -> None:
    """A single Linear 4 -> 2, counted byte by byte (what the real export writes, too)."""
    torch.manual_seed(0)
    costs = executorch_costs(nn.Sequential(nn.Linear(4, 2)), torch.zeros(1, 4))
    # The Program flatbuffer, as flatbuffers' Python builder packs it back to front
    # (each figure includes the alignment padding before it and a new vtable where one
    # is written: 2 bytes each for its length, the object size and each slot):
    flatbuffer = sum(
        [
            12 + 260 + 64 + 20,  # "forward", the input and output pytree specs (254 and 57
            #                      characters + NUL + length), ContainerMetadata table
            12 + 8 + 36 + 20,  # weight int8 [2, 4]: sizes, dim_order, Tensor (type, sizes,
            #                    dim_order, buffer 1; 16-byte vtable), EValue (tag, offset)
            8 + 8 + 20 + 12,  # bias int32 [2]: sizes, dim_order, Tensor, EValue
            12 + 8 + 12 + 38 + 18,  # input [1, 4]: sizes, dim_order, AllocationDetails
            #                         (memory 1, offset 16), Tensor, EValue
            12 + 8 + 14 + 36 + 10,  # output [1, 2] at offset 0 (left out: a new vtable)
            8 + 12,  # Null (no kernel sums): empty table, EValue
            # Int args: input offset (int64 + padding + vtable), weight offset 0 (an empty
            # table, Null's vtable), output offset, [multiplier] (Int, int64 vector, IntList),
            # [shift], activation max, min; each with its 12-byte EValue
            28 + 16 + 24 + (24 + 32) + (24 + 32) + 24 + 24,
            60 + 8 + 8,  # values vector (14 offsets), inputs [2], outputs [3]
            4 + 4 + 56 + 16 + 12 + 8 + 26 + 10,  # chain: empty inputs/outputs, 13 args,
            #                    KernelCall, Instruction, instructions, Chain, chains vector
            32 + 8 + 12 + 8,  # "cortex_m::quantized_linear", "out", Operator, operators
            4 + 24 + 62 + 10,  # delegates, non_const_buffer_sizes [0, 32], ExecutionPlan,
            #                    execution_plan vector
            4 + 4 + 16 + 8 + 32 + 8,  # constant_buffer, backend_delegate_data (empty),
            #                  DataSegment (size 24), segments, 3 uint64 offsets, their table
            40,  # Program table
            12,  # Finish: 4 padding to 8, file identifier "ET12", root offset
        ]
    )
    assert flatbuffer == 1392
    # + the 32-byte extended header "eh00" after the identifier, padded to 128: 1536;
    # + the constant segment: the weight's 8 bytes padded to 16, the bias' 8 bytes.
    assert costs.pte_bytes == 1536 + 16 + 8 == 1560
    # Input (4 B) and output (2 B), each padded to 16, both live during the one op.
    assert costs.planned_bytes == 16 + 16
    assert costs.parts == {
        "constants": 24,
        "program": 1536,
        "activations": 32,
        "scratch": 0,
        "scratch_largest": 0,
    }


class _Recurrent(nn.Module):
    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        self.rnn, self.out = rnn, nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.rnn(x)[0][:, -1])


@pytest.mark.parametrize("rnn", [nn.LSTM, nn.GRU])
def test_recurrent_layers_are_refused(rnn: type) -> None:
    with pytest.raises(MeasureError, match="no int8"):
        executorch_costs(_Recurrent(rnn(4, 8, batch_first=True)), torch.zeros(1, 5, 4))


CONV1D = nn.Sequential(
    nn.Conv1d(3, 8, 3, padding=1),
    nn.BatchNorm1d(8),
    nn.ReLU(),
    nn.MaxPool1d(2),
    nn.Flatten(),
    nn.Linear(8 * 8, 10),
)


def test_conv1d_is_refused_as_the_backend_refuses_it() -> None:
    """ExecuTorch 1.5's Cortex-M backend leaves a Conv1d in float (the export fails)."""
    with pytest.raises(MeasureError, match="Conv1d"):
        executorch_costs(CONV1D, torch.zeros(1, 3, 16))


@needs_executorch
def test_the_export_refuses_conv1d_too() -> None:
    from sparsemod.deploy.base import DeployError
    from sparsemod.deploy.executorch import RUNTIME

    with pytest.raises(DeployError, match="Conv1d"):
        RUNTIME.export(CONV1D.eval(), torch.randn(1, 3, 16), [torch.randn(8, 3, 16)])
