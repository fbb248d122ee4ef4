"""No network is trained twice: conditional parameters, the duplicate check, duplicate_of."""

from __future__ import annotations

import itertools

import pytest

from sparsemod import Study
from sparsemod.search.encoding import Encoder
from sparsemod.space import IntParam, SearchSpace, choice
from sparsemod.store import Store

# A small space of few networks (1 layer: 4 x 2 = 8, 2 layers: 32, 3 layers: 128), where
# the widths of the layers a network does not have are free to take any value.
SPACE = SearchSpace(
    (
        IntParam("n", 1, 3),
        IntParam("w1", 1, 4),
        IntParam("w2", 1, 4, active_if={"n": [2, 3]}),
        IntParam("w3", 1, 4, active_if={"n": [3]}),
        choice("lr", [0.01, 0.1]),
    )
)


def network(params):
    """What a builder of this space would build: the widths of the layers it has."""
    n = params["n"]
    return (tuple(params[f"w{i}"] for i in range(1, n + 1)), params["lr"])


def costs(params):
    return {"model_size_bytes": 64.0 * sum(network(params)[0])}


def error(params):
    widths, lr = network(params)
    return 1.0 / (1.0 + sum(widths)) + (0.05 if lr == 0.1 else 0.0)


def test_the_encoding_sees_one_point_per_network():
    enc = Encoder(SPACE)
    one = {"n": 1, "w1": 3, "w2": 4, "w3": 2, "lr": 0.1}
    other = {**one, "w2": 1, "w3": 4}  # the same one-layer network
    assert (enc.encode(one) == enc.encode(other)).all()
    assert (enc.encode(one) != enc.encode({**one, "n": 2})).any()
    # inactive parameters sit at their low end: (x - 1) / 3 for the widths
    assert list(enc.encode(one)) == pytest.approx([0.0, 2 / 3, 0.0, 0.0, 1.0])


def test_a_study_never_asks_for_a_network_twice(tmp_path):
    study = Study(
        SPACE, ("error", "model_size_bytes"), costs, store=f"sqlite:///{tmp_path}/s.db",
        phases={"sobol": 8, "gp": 16}, batch_size=2, seed=3,
    )  # fmt: skip
    while trials := study.ask(2):
        for t in trials:
            study.tell(t, {"error": error(t.params)})
    nets = [network(t.params) for t in study.trials]
    assert len(nets) == 24
    repeated = [n for n, k in itertools.groupby(sorted(nets)) if len(list(k)) > 1]
    assert repeated == []


def test_an_enqueued_network_trained_before_takes_its_result_without_training(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    study = Study(
        SPACE, ("error", "model_size_bytes"), costs, store=url, phases={"sobol": 3, "gp": 2}
    )
    first = {"n": 1, "w1": 2, "w2": 3, "w3": 3, "lr": 0.01}
    study.enqueue(first)
    [t0] = study.ask()
    # the same network (w2, w3 unused), enqueued while the first still trains: it waits
    study.enqueue({**first, "w2": 1, "w3": 4})
    [t1] = study.ask()
    assert t1.params != t0.params and network(t1.params) != network(first)
    study.tell(t0, {"error": 0.25})
    study.tell(t1, {"error": error(t1.params)})
    # now the first is told: the duplicate takes its result, and is not handed out
    [t3] = study.ask()
    dup = study.trials[2]
    assert (dup.duplicate_of, dup.status, dup.value("error")) == (0, "completed", 0.25)
    assert dup.params == {**first, "w2": 1, "w3": 4}
    assert t3.index == 3 and t3.duplicate_of is None
    assert [t.index for t in study.pending()] == [3]
    # stored so, off the front (its point is its original's), and a column of the table
    rows = Store(url).list_trials(study.search_id)
    assert [r.duplicate_of for r in rows] == [None, None, 0, None]
    assert rows[2].metrics["error"] == 0.25
    assert 2 not in {t.index for t in study.pareto()}
    frame = study.trials_frame()
    assert list(frame["duplicate_of"].astype("float").fillna(-1)) == [-1, -1, 0, -1]
    # a load keeps it a duplicate
    again = Study.load("study", url, costs)
    assert again.trials[2].duplicate_of == 0
