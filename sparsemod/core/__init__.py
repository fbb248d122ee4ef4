"""The core vocabulary: what a trial produced, with no torch and no SQL.

Modules here import nothing of sparsemod's layers above them, so every layer (the
evaluator, the compression schemes, the store, the results files, the service) can share
them. :mod:`.results` holds :class:`~sparsemod.core.results.TrialResult`,
:class:`~sparsemod.core.results.ModelArtifact` and :class:`~sparsemod.core.results.WarmStart`;
:mod:`.boards` the device profiles (``board = NAME``, a ``[BOARD]`` section).
"""
