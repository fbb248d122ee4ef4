"""The unit-cube encoding and quasi-random sampling of a search space."""

from __future__ import annotations

import numpy as np

from sparsemod.builders import cnn_space
from sparsemod.search.encoding import Encoder, key
from sparsemod.space import ChoiceParam, FixedParam, FloatParam, IntParam, SearchSpace

SPACE = SearchSpace(
    (
        IntParam("width", 4, 64, log=True),
        FloatParam("lr", 1e-4, 1e-1, log=True),
        FloatParam("dropout", 0.0, 0.5),
        ChoiceParam("kernel", (3, 5, 7), ordered=True),
        ChoiceParam("act", ("relu", "tanh", "gelu")),
        FixedParam("classes", 10),
    )
)


def test_encoding_by_hand():
    enc = Encoder(SPACE)
    # width, lr, dropout, kernel: one column each; act: three one-hot columns; fixed: none
    assert enc.dim == 4 + 3
    row = enc.encode(
        dict(width=16, lr=1e-3 * 10**0.5, dropout=0.25, kernel=7, act="tanh", classes=10)
    )
    # log2(16/4)/log2(64/4) = 2/4; log10(lr/1e-4)/3 = 1.5/3; 0.25/0.5; rank 2 of 0..2
    assert np.allclose(row, [0.5, 0.5, 0.5, 1.0, 0.0, 1.0, 0.0])


def test_samples_are_valid_spread_and_reproducible():
    enc = Encoder(SPACE)
    a, b = enc.sample(64, seed=3), enc.sample(64, seed=3)
    assert a == b
    assert a != enc.sample(64, seed=4)
    for params in a:
        assert SPACE.validate(params) == params
    assert {p["act"] for p in a} == {"relu", "tanh", "gelu"}
    assert {p["kernel"] for p in a} == {3, 5, 7}
    widths = [p["width"] for p in a]
    assert min(widths) == 4 and max(widths) == 64
    # a log-scaled range: as many samples below the geometric middle (16) as above
    assert abs(sum(w < 16 for w in widths) - sum(w > 16 for w in widths)) <= 8


def test_cnn_space_samples_validate_and_keys_identify_arms():
    space = cnn_space()
    enc = Encoder(space)
    rows = enc.sample(32, seed=0)
    assert all(space.validate(r) == r for r in rows)
    assert enc.encode_many(rows).shape == (32, enc.dim)
    assert key(rows[0]) == key(dict(reversed(list(rows[0].items()))))
    assert len({key(r) for r in rows}) == 32
