"""Weight clustering: each output channel's weights shared among ``2**bits`` values.

``compression = lut`` runs this after pruning and fine-tuning, before quantization. TFLM
then stores each clustered weight tensor as ``bits``-bit indices into per-channel value
tables (its LUT compression and ``DECODE`` op; the cost is counted by
:mod:`sparsemod.objectives.tflm_lut` and the artifact written by
``sparsemod.deploy.tflite_lut``).

Per output channel of each convolution and linear layer whose weight the LUT would store
smaller (:func:`lut_worth`: a layer of a few hundred weights would grow, and keeps its
weights), the non-zero weights are
clustered by one-dimensional k-means (Lloyd's algorithm from the channel's quantiles, all
channels at once) and replaced by their centroid. Weights that pruning zeroed stay zero,
and zero then takes one of the ``2**bits`` values, so a pruned channel keeps its zeros and
has at most ``2**bits`` distinct values in all. A symmetric per-channel int8 quantizer maps
``k`` distinct values to at most ``k`` int8 values, so the property survives quantization:
:func:`int8_distinct` counts what the runtime's tables will hold.

SpArSeMod had no clustering; this follows the weight sharing of Deep Compression (Han et
al., 2016, arXiv:1510.00149), without its centroid fine-tuning.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sparsemod.errors import ConfigError

LUT_BITS = (1, 7)  # TFLM's LUT index widths (DCM bitwidth field, 1-7)
_ITERATIONS = 12
_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Linear)

# What compressing one weight adds besides its indices and tables: its DECODE op, the
# decoded and ancillary tensors with their names (about 520 B measured on the digits
# networks, objectives/tflm_lut.py), and 12 B a channel for the decoded tensor's copy of
# the scales (float32) and zero points (int64). A weight is compressed when the rest of
# what it saves is at least the margin.
LUT_MARGIN = 640
_LUT_PER_TABLE = 12


def lut_width(stride: int) -> int | None:
    """The index bits for a value table of ``stride`` values; None when over TFLM's 7 bits."""
    bits = max(1, (stride - 1).bit_length())
    return bits if bits <= 7 else None


def lut_worth(elements: int, bits: int, stride: int, tables: int) -> bool:
    """Whether a weight of ``elements`` int8 values is LUT-compressed: what its packed
    indices save on the dense weight, less the 16-byte header, the value tables
    (``tables x stride`` bytes) and 12 B a table, must reach :data:`LUT_MARGIN` (the
    ``DECODE`` op and the new tensors' metadata), so that the flatbuffer gets smaller."""
    packed = -(-elements * bits // 8)
    return elements - packed - 16 - tables * (stride + _LUT_PER_TABLE) >= LUT_MARGIN


def layer_width(elements: int, per_channel: int, tables: int, bits: int) -> int | None:
    """The index bits TFLM's LUT stores a weight with under ``lut_bits = bits``, or None
    when it stays dense: a channel of ``per_channel`` weights clusters to at most
    ``min(2**bits, per_channel)`` values, and the weight is compressed when
    :func:`lut_worth` says so for tables that long. A function of the shape only, so the
    search's prediction before training and the artifact make the same choice."""
    stride = min(2**bits, per_channel)
    width = lut_width(stride)
    return width if width is not None and lut_worth(elements, width, stride, tables) else None


def clustered_layers(model: nn.Module, bits: int) -> list[tuple[str, nn.Module]]:
    """The convolution and linear layers whose weights LUT compression will store
    (:func:`layer_width`); the others keep their weights."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, _LAYERS)
        and m.weight.numel()
        and layer_width(m.weight.numel(), m.weight[0].numel(), len(m.weight), bits) is not None
    ]


@torch.no_grad()
def cluster_channels(weight: torch.Tensor, values: int) -> torch.Tensor:
    """``weight`` with each output channel (dim 0) reduced to at most ``values`` values.

    Args:
        weight: a layer's weight, output channels first.
        values: the number of values a channel may hold (``2**bits``), >= 2.

    Returns:
        A new tensor of the same shape and dtype: zeros stay zero, every other weight is
        its cluster's mean.
    """
    flat = weight.detach().reshape(weight.shape[0], -1).to(torch.float64)
    if flat.shape[1] <= values or flat.numel() == 0:
        return weight.detach().clone()  # no channel can have more values than that
    nonzero = flat != 0
    has_zero = (~nonzero).any(dim=1, keepdim=True)
    # The free centroids of a channel: values - 1 when zero is one of its values.
    free = values - has_zero.to(torch.int64)
    count = nonzero.sum(dim=1, keepdim=True)
    sorted_vals = torch.where(nonzero, flat, torch.inf).sort(dim=1).values
    # Start at the channel's quantiles (of its non-zero weights).
    slot = torch.arange(values, dtype=torch.float64).unsqueeze(0)
    used = torch.minimum(free, count).clamp(min=1)
    q = ((slot + 0.5) / used * count).floor().clamp(max=(count - 1).clamp(min=0))
    centroids = sorted_vals.gather(1, q.to(torch.int64))
    live = (slot < free) & (slot < count)
    centroids = torch.where(live, centroids, torch.inf)
    for _ in range(_ITERATIONS):
        assign = _nearest(centroids, flat)
        sums = torch.zeros_like(centroids).scatter_add_(1, assign, torch.where(nonzero, flat, 0))
        sizes = torch.zeros_like(centroids).scatter_add_(1, assign, nonzero.to(flat.dtype))
        moved = torch.where(sizes > 0, sums / sizes.clamp(min=1), centroids)
        centroids = torch.where(live, moved, torch.inf).sort(dim=1).values
        live = torch.isfinite(centroids)
    shared = centroids.gather(1, _nearest(centroids, flat))
    out = torch.where(nonzero, shared, 0.0)
    return out.reshape(weight.shape).to(weight.dtype)


def _nearest(centroids: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """Per element, the index of its nearest centroid (centroids sorted, unused = inf)."""
    right = centroids[:, 1:]
    mids = torch.where(torch.isfinite(right), (centroids[:, :-1] + right) / 2, torch.inf)
    idx = torch.searchsorted(mids.contiguous(), flat.contiguous())
    last = (torch.isfinite(centroids).sum(dim=1, keepdim=True) - 1).clamp(min=0)
    return torch.minimum(idx, last)


@torch.no_grad()
def cluster_weights(model: nn.Module, bits: int) -> None:
    """Share each output channel's weights among ``2**bits`` values, in place, in the
    layers LUT compression will store smaller (:func:`clustered_layers`).

    Args:
        model: a float network, pruned or not (masks made permanent).
        bits: index bits, 1 to 7.

    Raises:
        ConfigError: ``bits`` is not an integer from 1 to 7.
    """
    lo, hi = LUT_BITS
    if isinstance(bits, bool) or not isinstance(bits, int) or not lo <= bits <= hi:
        raise ConfigError(
            f"lut_bits: {bits!r} is not an index width TFLM's LUT takes (allowed: {lo} to {hi})",
            key="lut_bits",
        )
    for _, layer in clustered_layers(model, bits):
        layer.weight.copy_(cluster_channels(layer.weight, 2**bits))


def check_space_bits(space: Any) -> None:
    """Refuse a space whose ``lut_bits`` parameter can draw anything but an integer 1-7.

    Raises:
        ConfigError: the parameter is real-valued, or a bound or value is outside 1..7.
    """
    for p in space.parameters:
        if p.name != "lut_bits":
            continue
        values = [p.low, p.high] if hasattr(p, "low") else list(getattr(p, "values", [])) or [
            getattr(p, "value", None)
        ]
        lo, hi = LUT_BITS
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int)
               or not lo <= v <= hi]  # fmt: skip
        if bad:
            raise ConfigError(
                f"space parameter lut_bits: {type(p).__name__} with {bad!r} can draw an index "
                f"width TFLM's LUT does not take (allowed: integers {lo} to {hi})",
                key="lut_bits",
            )


@torch.no_grad()
def int8_distinct(weight: torch.Tensor) -> int:
    """The most distinct int8 values any output channel of ``weight`` holds under symmetric
    per-channel quantization to -127..127 (the value table length the runtime stores)."""
    flat = weight.detach().reshape(weight.shape[0], -1).to(torch.float64)
    scale = flat.abs().amax(dim=1, keepdim=True) / 127
    q = torch.round(flat / torch.where(scale > 0, scale, 1.0))
    q = q.sort(dim=1).values
    distinct = 1 + (q[:, 1:] != q[:, :-1]).sum(dim=1)
    return int(distinct.max()) if len(distinct) else 0
