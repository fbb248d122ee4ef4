"""The op-level latency model: MACs per op against hand counts, latency against hand sums."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from sparsemod.core.boards import BOARDS, CORES, Board
from sparsemod.errors import ConfigError
from sparsemod.objectives.flops import rnn_macs
from sparsemod.objectives.latency import (
    CYCLES,
    OP_CLASSES,
    latency_breakdown,
    op_class,
    op_macs,
    ops_latency,
)
from sparsemod.objectives.tflm_graph import Graph, Op, Tensor, lower


def _ops(model: nn.Module, *shape: int) -> list[tuple[str, int]]:
    g = lower(model.eval(), torch.zeros(1, *shape))
    return [(op.kind, op_macs(g, op)) for op in g.ops]


def test_every_core_has_every_op_class():
    assert set(CYCLES) == set(CORES)
    for core, row in CYCLES.items():
        assert set(row) == set(OP_CLASSES), core
        assert all(per_mac > 0 and per_op > 0 for per_mac, per_op in row.values()), core


def test_a_conv_of_one_channel_is_depthwise_and_counts_its_macs():
    # TFLite runs a conv of one input channel as a depthwise conv (multiplier 8).
    ops = _ops(nn.Sequential(nn.Conv2d(1, 8, 3, padding=1)), 1, 8, 8)
    assert ops == [("RESHAPE", 64), ("DEPTHWISE_CONV_2D", 8 * 8 * 8 * 9)]


def test_conv_counts_output_elements_times_kernel_times_input_channels():
    ops = _ops(nn.Sequential(nn.Conv2d(4, 8, 3, padding=1)), 4, 8, 8)
    assert ops == [("TRANSPOSE", 4 * 8 * 8), ("CONV_2D", 8 * 8 * 8 * 3 * 3 * 4)]
    grouped = _ops(nn.Sequential(nn.Conv2d(4, 8, 3, padding=1, groups=2)), 4, 8, 8)
    assert grouped[1] == ("CONV_2D", 8 * 8 * 8 * 3 * 3 * 2)  # 2 input channels a group


def test_depthwise_fully_connected_reshape_and_transpose():
    net = nn.Sequential(
        nn.Conv2d(4, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, stride=2, groups=8),
        nn.Flatten(),
        nn.Linear(128, 10),
    )
    assert _ops(net, 4, 8, 8) == [
        ("TRANSPOSE", 256),
        ("CONV_2D", 8 * 8 * 8 * 36),
        ("DEPTHWISE_CONV_2D", 4 * 4 * 8 * 9),
        ("TRANSPOSE", 128),
        ("RESHAPE", 128),
        ("FULLY_CONNECTED", 10 * 128),
    ]


def test_fully_connected_counts_every_row():
    # keep_num_dims: a linear over (1, 4, 8) is 4 rows of 8 -> 10.
    assert _ops(nn.Sequential(nn.Linear(8, 10)), 4, 8) == [("FULLY_CONNECTED", 4 * 10 * 8)]


def test_pools_count_window_reads_and_add_counts_elements():
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.max = nn.MaxPool2d(3, stride=2)
            self.avg = nn.AvgPool2d(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.conv(x)) + x
            return self.avg(self.max(y))

    # No QUANTIZE after the average pool: on the all-zeros example its input is constant
    # over space, so the pool keeps its range (see tflm_ranges).
    assert _ops(Residual(), 4, 8, 8) == [
        ("TRANSPOSE", 256),
        ("CONV_2D", 8 * 8 * 4 * 36),
        ("ADD", 8 * 8 * 4),
        ("MAX_POOL_2D", 3 * 3 * 4 * 9),  # 8x8 -> 3x3, a 3x3 window
        ("AVERAGE_POOL_2D", 1 * 1 * 4 * 4),  # 3x3 -> 1x1, a 2x2 window
    ]


def test_one_d_nets_and_tanh():
    net = nn.Sequential(nn.Conv1d(2, 4, 3), nn.Tanh(), nn.AvgPool1d(2))
    assert _ops(net, 2, 16) == [
        ("TRANSPOSE", 32),
        ("CONV_2D", 14 * 4 * 3 * 2),
        ("TANH", 14 * 4),
        ("AVERAGE_POOL_2D", 7 * 4 * 2),
    ]


def test_an_lstm_op_counts_as_the_flops_model_does():
    g = Graph(
        tensors=[Tensor("x", (1, 5, 8), "int8"), Tensor("h", (1, 5, 16), "int8")],
        ops=[Op("UNIDIRECTIONAL_SEQUENCE_LSTM", (0,), (1,))],
    )
    assert op_macs(g, g.ops[0]) == 5 * 4 * 16 * (8 + 16)
    assert op_macs(g, g.ops[0]) == rnn_macs("LSTM", (1, 5, 8), 8, 16, 1, False, True)
    assert op_class("UNIDIRECTIONAL_SEQUENCE_LSTM") == "lstm"
    assert op_class("SOFTMAX") == "other"


def _net() -> Graph:
    net = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(512, 10))
    return lower(net.eval(), torch.zeros(1, 4, 8, 8))


def test_ops_latency_is_the_hand_sum_on_two_cores():
    g = _net()
    assert [op.kind for op in g.ops] == [
        "TRANSPOSE",
        "CONV_2D",
        "TRANSPOSE",
        "RESHAPE",
        "FULLY_CONNECTED",
    ]
    # (elements or MACs) x cycles per MAC + cycles per op, from the table's rows.
    m7 = (256 * 4.0 + 300) + (18432 * 1.6 + 2000) + 2 * (512 * 4.0 + 300) + (5120 * 2.0 + 1500)
    m0 = (256 * 12.0 + 500) + (18432 * 8.0 + 3000) + 2 * (512 * 12 + 500) + (5120 * 8.0 + 2000)
    assert ops_latency(g, BOARDS["nucleo-f746zg"]) == pytest.approx(m7 / 216e6)
    assert ops_latency(g, BOARDS["pico"]) == pytest.approx(m0 / 133e6)
    assert m7 / 216e6 == pytest.approx(0.22801e-3, rel=1e-4)
    assert m0 / 133e6 == pytest.approx(1.5810e-3, rel=1e-4)


def test_the_same_core_scales_with_the_clock():
    g = _net()
    nrf, l476 = BOARDS["nrf52840-dk"], BOARDS["nucleo-l476rg"]  # both Cortex-M4
    assert ops_latency(g, nrf) == pytest.approx(ops_latency(g, l476) * 80 / 64)
    latencies = {b.name: ops_latency(g, b) for b in BOARDS.values()}
    assert len(set(latencies.values())) == len(BOARDS)
    assert sorted(latencies, key=latencies.get) == [
        "esp32-s3-devkitc-1",
        "nucleo-f746zg",
        "nucleo-l476rg",
        "nrf52840-dk",
        "pico",
    ]


def test_the_breakdown_sums_to_the_latency():
    g = _net()
    board = BOARDS["esp32-s3-devkitc-1"]
    rows = latency_breakdown(g, board)
    assert [(kind, macs) for kind, _, macs, _ in rows] == [
        ("TRANSPOSE", 256),
        ("CONV_2D", 18432),
        ("TRANSPOSE", 512),
        ("RESHAPE", 512),
        ("FULLY_CONNECTED", 5120),
    ]
    assert rows[1][1] == "0" and rows[1][3] == pytest.approx((18432 * 1.4 + 2000) / 240e6)
    assert sum(r[3] for r in rows) == pytest.approx(ops_latency(g, board))


def test_a_core_without_figures_is_a_config_error():
    board = Board("riscv-board", "riscv32", 100_000_000, 1, 1, "", "")
    with pytest.raises(ConfigError) as err:
        ops_latency(_net(), board)
    assert err.value.key == "core" and "'riscv32'" in str(err.value)


def test_a_small_network_is_priced_in_well_under_a_millisecond():
    g, board = _net(), BOARDS["nucleo-l476rg"]
    start = time.perf_counter()
    for _ in range(200):
        ops_latency(g, board)
    assert (time.perf_counter() - start) / 200 < 1e-3
