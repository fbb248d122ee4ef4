"""The REST service of sparsemod: a FastAPI app (``uvicorn server.app:app``) and a worker.

The API process validates requests and reads and writes rows through
:class:`sparsemod.store.Store`; it never trains. The worker (``python -m server.worker``)
claims queued searches and runs them with the same code as ``python main.py``.
``server`` imports ``sparsemod``; ``sparsemod`` never imports ``server``.
"""
