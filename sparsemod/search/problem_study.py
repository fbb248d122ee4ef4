"""A study over a problem's builder: what ``python main.py`` runs, and an ask/tell user may.

:class:`ProblemStudy` is a :class:`~sparsemod.search.study.Study` whose plan comes from
``[TRAIN]``, whose exact costs come from building each candidate
(:func:`sparsemod.evaluate.predict_costs`), which has the morph phase, and which knows how
each of its trials is evaluated (:meth:`ProblemStudy.eval_settings`,
:meth:`ProblemStudy.warm_start`)::

    study = problem_study(cfg, problem, data, store)
    while trials := study.ask_round():
        for t in trials:
            study.record(t, evaluate(problem, t.params, study.eval_settings(t), data,
                                     study.warm_start(t)))

gives the trials ``python main.py`` gives (the same seed, the same config), when each
evaluation runs with ``[TRAIN] threads`` torch threads as every executor runs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

from torch import nn

from sparsemod.compress.cluster import check_space_bits
from sparsemod.config import TrainConfig, resume_changes
from sparsemod.data import Splits
from sparsemod.early_stopping import EarlyStop, error_to_beat
from sparsemod.evaluate import EvalSettings, WarmStart, predict_costs
from sparsemod.identity import model_fingerprint, network_fingerprint
from sparsemod.problems import Problem
from sparsemod.search.costs import Costs
from sparsemod.search.encoding import Encoder, key
from sparsemod.search.phases import WARM, Plan
from sparsemod.search.reporter import ConsoleReporter, Reporter
from sparsemod.search.state import Trial
from sparsemod.search.study import Study
from sparsemod.store import Store


class ProblemStudy(Study):
    """The study of a search of a problem (built by :func:`problem_study`).

    Raises:
        ConfigError: a resume that changes what was measured (nothing is written).
        Cancelled: the search was cancelled before it started.
    """

    def __init__(
        self,
        config: TrainConfig,
        problem: Problem,
        costs: Costs,
        store: Store,
        search_id: int | None,
        reporter: Reporter,
        settings: Mapping[str, EvalSettings],
    ) -> None:
        self._settings = dict(settings)
        self._stop = (
            EarlyStop(1.0, config.min_epochs, config.stop_confidence)
            if config.early_stopping == "front"
            else None
        )
        self._setup(
            problem.space, config.objective_names, costs, Plan.of(config), costs.constraints,
            store, reporter, problem=problem.name, morphs=True,
        )  # fmt: skip
        self._open(
            config.name, asdict(config), search_id, lambda: self._reference(config.ref_point),
            lambda stored: resume_changes(stored, config),
        )  # fmt: skip

    def eval_settings(self, trial: Trial) -> EvalSettings:
        """How :func:`sparsemod.evaluate.evaluate` evaluates ``trial``: its phase's
        settings, with the current front (a candidate the front dominates will never keep
        its model, so the evaluator does not serialise it) and, with ``early_stopping =
        front``, the error it must beat to join that front."""
        front = tuple(tuple((o, t.value(o)) for o in self.objectives) for t in self.pareto())
        settings = replace(self._settings[trial.phase], model_front=front)
        if self._stop is None:
            return settings
        # Early stopping: the error it must beat at its exact costs, from the same front.
        costs = {o: trial.predicted.get(o) for o in self.objectives if o != "error"}
        if None in costs.values():
            return settings  # a cost it was stored without: no bar to hold it to
        ref = dict(zip(self.objectives, self.ref_point))
        bar = error_to_beat(costs, [dict(p) for p in front], ref)
        return replace(settings, early_stop=replace(self._stop, error_to_beat=bar))

    def warm_start(self, trial: Trial) -> WarmStart | None:
        """The trained parent a morph child starts from (``None``: it trains from scratch)."""
        if trial.morph and trial.morph.endswith(WARM) and trial.parent is not None:
            parent = self.state.trials[trial.parent]
            if parent.result is not None and parent.result.trained_state is not None:
                return WarmStart(parent.params, parent.result.trained_state)
        return None


def problem_study(
    config: TrainConfig,
    problem: Problem,
    data: Splits,
    store: Store,
    search_id: int | None = None,
    reporter: Reporter | None = None,
) -> ProblemStudy:
    """The study a search of ``problem`` runs: ``[TRAIN]``'s plan, exact costs from the
    problem's builder, each phase's evaluation settings and the morphisms."""
    shape = (tuple(data.input_shape), data.num_classes)
    if config.compression == "lut":
        check_space_bits(problem.space)  # said before anything trains
    settings = {
        phase: replace(config.eval_settings(epochs), keep_trained=config.morphisms)
        for phase, epochs in (
            ("sobol", config.epochs1), ("gp", config.epochs2), ("morph", config.epochs3)
        )
    }  # fmt: skip
    costing = settings["sobol"]  # the costs do not depend on the epochs

    # A candidate's fingerprint is taken from the network its costing builds, not built
    # again: the pool asks for it right after the costs. Only the last one is kept.
    fingerprints: dict[tuple, str] = {}

    def predict(params: Mapping[str, Any]) -> dict[str, float]:
        def built(model: nn.Module, valid: dict[str, Any]) -> None:
            fingerprints.clear()
            fingerprints[key(params)] = model_fingerprint(model, valid, costing)

        return predict_costs(problem, params, costing, *shape, built=built)

    def identify(params: Mapping[str, Any]) -> str:
        known = fingerprints.pop(key(params), None)
        return known or network_fingerprint(problem, params, costing, *shape)

    costs = Costs(
        predict, config.constraints, config.objective_names, Encoder(problem.space),
        config.seed, config.debug, identify,
    )  # fmt: skip
    reporter = reporter if reporter is not None else ConsoleReporter()
    return ProblemStudy(config, problem, costs, store, search_id, reporter, settings)
