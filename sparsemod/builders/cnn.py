"""SpArSe-style convolutional networks: up to three blocks of convolutions, then a small MLP.

Each block repeats one layer type (standard, 1x1-reduce-then-conv, or depthwise-separable)
with "same" padding, so only the block's optional 2x2 pooling shrinks the feature map.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from torch import nn

from sparsemod.errors import BuildError, ConfigError
from sparsemod.space import FloatParam, IntParam, Param, SearchSpace, choice

MAX_BLOCKS = 3
MAX_FC = 2
LAYER_TYPES = ("standard", "downsampled", "depthwise")
POOLS = ("max", "avg", "none")

_REFERENCE: dict[str, Any] = {
    "num_blocks": 2,
    "b1_layers": 1,
    "b1_type": "standard",
    "b1_filters": 16,
    "b1_kernel": 3,
    "b1_pool": "max",
    "b2_layers": 1,
    "b2_type": "standard",
    "b2_filters": 32,
    "b2_kernel": 3,
    "b2_pool": "max",
    "b3_layers": 1,
    "b3_type": "standard",
    "b3_filters": 32,
    "b3_kernel": 3,
    "b3_pool": "none",
    "num_fc": 1,
    "fc1_units": 64,
    "fc2_units": 32,
    "dropout": 0.1,
    "lr": 0.003,
    "keep_ratio": 0.5,
}


def cnn_space() -> SearchSpace:
    """The CNN search space, with a two-block reference network.

    Returns:
        A space with ``num_blocks``; per block ``b{b}_layers``, ``b{b}_type``,
        ``b{b}_filters``, ``b{b}_kernel``, ``b{b}_pool``; ``num_fc``, ``fc1_units``,
        ``fc2_units``, ``dropout``; and the training keys ``lr`` and ``keep_ratio``. The
        parameters of block ``b`` are active when ``num_blocks >= b``; ``fc{i}_units`` when
        ``num_fc >= i``; ``dropout`` when ``num_fc >= 1``.
    """
    params: list[Param] = [IntParam("num_blocks", 1, MAX_BLOCKS)]
    for b in range(1, MAX_BLOCKS + 1):
        # block b exists when num_blocks >= b
        used = None if b == 1 else {"num_blocks": list(range(b, MAX_BLOCKS + 1))}
        params += [
            IntParam(f"b{b}_layers", 1, 3, active_if=used),
            choice(f"b{b}_type", LAYER_TYPES, active_if=used),
            IntParam(f"b{b}_filters", 4, 64, log=True, active_if=used),
            choice(f"b{b}_kernel", [3, 5], active_if=used),
            choice(f"b{b}_pool", POOLS, active_if=used),
        ]
    any_fc = {"num_fc": list(range(1, MAX_FC + 1))}
    params += [
        IntParam("num_fc", 0, MAX_FC),
        IntParam("fc1_units", 8, 256, log=True, active_if=any_fc),
        IntParam("fc2_units", 8, 256, log=True, active_if={"num_fc": [2]}),
        FloatParam("dropout", 0.0, 0.5, active_if=any_fc),  # dropout follows each FC layer
        FloatParam("lr", 1e-4, 1e-1, log=True),
        FloatParam("keep_ratio", 0.05, 1.0),
    ]
    return SearchSpace(tuple(params), dict(_REFERENCE))


def _conv_layer(
    kind: str, in_ch: int, out_ch: int, k: int, prefix: str
) -> list[tuple[str, nn.Module]]:
    """The named modules of one layer of a block, in construction order."""
    pad = k // 2
    if kind == "standard":
        return [
            (f"{prefix}_conv", nn.Conv2d(in_ch, out_ch, k, padding=pad)),
            (f"{prefix}_bn", nn.BatchNorm2d(out_ch)),
            (f"{prefix}_relu", nn.ReLU()),
        ]
    if kind == "downsampled":
        reduced = max(1, out_ch // 2)
        return [
            (f"{prefix}_reduce", nn.Conv2d(in_ch, reduced, 1)),
            (f"{prefix}_reduce_bn", nn.BatchNorm2d(reduced)),
            (f"{prefix}_reduce_relu", nn.ReLU()),
            (f"{prefix}_conv", nn.Conv2d(reduced, out_ch, k, padding=pad)),
            (f"{prefix}_bn", nn.BatchNorm2d(out_ch)),
            (f"{prefix}_relu", nn.ReLU()),
        ]
    if kind == "depthwise":
        return [
            (f"{prefix}_dw", nn.Conv2d(in_ch, in_ch, k, padding=pad, groups=in_ch)),
            (f"{prefix}_dw_bn", nn.BatchNorm2d(in_ch)),
            (f"{prefix}_dw_relu", nn.ReLU()),
            (f"{prefix}_pw", nn.Conv2d(in_ch, out_ch, 1)),
            (f"{prefix}_pw_bn", nn.BatchNorm2d(out_ch)),
            (f"{prefix}_pw_relu", nn.ReLU()),
        ]
    # validate() has already restricted the type, so this is a bug, not bad input.
    raise AssertionError(f"unhandled layer type {kind!r}")


def _blocks_phrase(blocks: list[int]) -> str:
    if len(blocks) == 1:
        return f"block {blocks[0]}"
    if blocks == list(range(blocks[0], blocks[-1] + 1)):
        return f"blocks {blocks[0]}-{blocks[-1]}"
    return "blocks " + ", ".join(str(b) for b in blocks)


def _check_input(input_shape: tuple[int, ...], num_classes: int) -> tuple[int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise BuildError(
            f"the CNN needs images shaped (channels, height, width), got input shape {shape}"
        )
    if not all(isinstance(d, int) and d > 0 for d in shape):
        raise BuildError(f"input shape {shape} must be positive integers")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    return shape[0], shape[1], shape[2]


def build_cnn(
    params: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int
) -> nn.Sequential:
    """Build a CNN from one point of :func:`cnn_space`.

    Blocks after ``num_blocks`` and fully connected sizes after ``num_fc`` are ignored, as
    are ``lr`` and ``keep_ratio``.

    Args:
        params: a complete parameter dict of :func:`cnn_space`.
        input_shape: ``(channels, height, width)`` of one image.
        num_classes: number of output logits.

    Returns:
        An ``nn.Sequential`` with children named ``b1_l1_conv``, ``b1_l1_bn``, ...,
        ``b1_pool``, ``flatten``, ``fc1``, ``fc1_relu``, ``fc1_drop``, ..., ``out``.

    Raises:
        ConfigError: a parameter is unknown, missing or out of range, or ``num_classes`` < 1.
        BuildError: ``input_shape`` is not 3-dimensional, or a pooling would see a feature
            map smaller than 2x2.
    """
    p = cnn_space().validate(params)
    channels, height, width = _check_input(input_shape, num_classes)
    shape_text = "x".join(str(d) for d in input_shape)

    layers: list[tuple[str, nn.Module]] = []
    pooled: list[int] = []
    in_ch, h, w = channels, height, width
    for b in range(1, int(p["num_blocks"]) + 1):
        kind, filters, k = str(p[f"b{b}_type"]), int(p[f"b{b}_filters"]), int(p[f"b{b}_kernel"])
        for i in range(1, int(p[f"b{b}_layers"]) + 1):
            layers += _conv_layer(kind, in_ch, filters, k, f"b{b}_l{i}")
            in_ch = filters
        pool = p[f"b{b}_pool"]
        if pool == "none":
            continue
        if h < 2 or w < 2:
            earlier = f", {_blocks_phrase(pooled)} already halved it" if pooled else ""
            raise BuildError(
                f"block {b} pooling: feature map is {h}x{w}, too small to pool "
                f"(input {shape_text}{earlier})"
            )
        pool_cls = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
        layers.append((f"b{b}_pool", pool_cls(kernel_size=2, stride=2)))
        h, w = h // 2, w // 2
        pooled.append(b)

    layers.append(("flatten", nn.Flatten()))
    features = in_ch * h * w
    for i in range(1, int(p["num_fc"]) + 1):
        units = int(p[f"fc{i}_units"])
        layers += [
            (f"fc{i}", nn.Linear(features, units)),
            (f"fc{i}_relu", nn.ReLU()),
            (f"fc{i}_drop", nn.Dropout(float(p["dropout"]))),
        ]
        features = units
    layers.append(("out", nn.Linear(features, num_classes)))
    return nn.Sequential(OrderedDict(layers))
