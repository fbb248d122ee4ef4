"""What a search leaves behind, and the maths of its Pareto set.

* :mod:`~sparsemod.results.pareto`: Pareto masks and hypervolume (no torch until an exact
  hypervolume needs BoTorch, no SQL);
* :mod:`~sparsemod.results.trials`: the trials table (``trials.csv``'s columns);
* :mod:`~sparsemod.results.artifact`: a deployed model's metadata, written and read back;
* :mod:`~sparsemod.results.files` and :mod:`~sparsemod.results.plots`: the result files;
* :mod:`~sparsemod.results.export`: a stored search written out as those files;
* :mod:`~sparsemod.results.reading`: :func:`load_results` and :class:`Results`.

Nothing here imports :mod:`sparsemod.search`: the search imports this package.
"""
