"""Network builders: a parameter dict and a data shape in, a ``torch.nn.Module`` out.

A builder validates its parameters against its search space, so a bad dict fails with a
:class:`~sparsemod.errors.ConfigError` naming the parameter; a valid dict that cannot give a
working network (a feature map pooled down to nothing) fails with a
:class:`~sparsemod.errors.BuildError`. Networks use only standard ``torch.nn`` modules in an
``nn.Sequential`` so that ``torch.fx`` can trace them and the compression and measurement
code can walk them without knowing which builder made them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from torch import nn

from sparsemod.builders.cnn import build_cnn, cnn_space
from sparsemod.builders.mlp import build_mlp, mlp_space
from sparsemod.builders.rnn import build_rnn, rnn_space
from sparsemod.space import SearchSpace

__all__ = [
    "BUILDERS",
    "Builder",
    "build_cnn",
    "build_mlp",
    "build_rnn",
    "cnn_space",
    "mlp_space",
    "rnn_space",
]


class Builder(Protocol):
    """What every builder, built-in or user-written, looks like."""

    def __call__(
        self, params: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int
    ) -> nn.Module:
        """Build an untrained network.

        Args:
            params: one point of the builder's search space (keys the builder does not use,
                such as ``lr`` and ``keep_ratio``, are part of the space and ignored).
            input_shape: shape of one example, without the batch dimension.
            num_classes: number of output logits.

        Returns:
            The network; its forward maps ``(batch, *input_shape)`` to ``(batch, num_classes)``.

        Raises:
            ConfigError: a parameter is unknown, missing or out of range.
            BuildError: the parameters cannot give a working network for this input shape.
        """
        ...


BUILDERS: dict[str, tuple[Builder, Callable[[], SearchSpace]]] = {
    "cnn": (build_cnn, cnn_space),
    "mlp": (build_mlp, mlp_space),
    "rnn": (build_rnn, rnn_space),
}
