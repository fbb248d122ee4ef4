"""``sparsemod serve`` and ``sparsemod dashboard``: the service (``server/``) as child
processes. sparsemod itself never imports ``server``; the children find it beside the
package in a checkout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sparsemod.errors import ConfigError, SparsemodError


def _server_env(root: str, database: str | None) -> dict[str, str]:
    """The environment of a child running ``server/``: its store and its import path."""
    import os

    env = dict(os.environ, SPARSEMOD_RESULTS_ROOT=root)
    if database:
        env["SPARSEMOD_DATABASE_URL"] = database
    # server/ sits beside the sparsemod package in a checkout.
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH")) if p)
    return env


def _uvicorn(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "server.app:app", "--host", host, "--port", str(port)]


def serve(args: argparse.Namespace) -> None:
    """``sparsemod serve``: uvicorn with ``server.app:app`` and one ``server.worker``.

    Both run as child processes until Ctrl-C or until one of them ends; sparsemod itself
    never imports ``server``.

    Raises:
        ConfigError: no ``SPARSEMOD_API_TOKEN`` and no ``--dev``.
        SparsemodError: the API or the worker ended with an error.
    """
    env = _server_env(args.root, args.database)
    if args.dev:
        env["SPARSEMOD_DEV"] = "1"
    dev = env.get("SPARSEMOD_DEV", "").strip().lower() in ("1", "true", "yes", "on")
    if not env.get("SPARSEMOD_API_TOKEN", "").strip() and not dev:
        raise ConfigError(
            "serve: SPARSEMOD_API_TOKEN is not set; set it, or pass --dev to serve "
            "without a token on this machine only"
        )
    print(f"sparsemod: serving http://{args.host}:{args.port}/ and /api/v1/docs (Ctrl-C stops)")
    _children(
        "serve",
        {"API": _uvicorn(args.host, args.port), "worker": [sys.executable, "-m", "server.worker"]},
        env,
    )


def dashboard(args: argparse.Namespace) -> None:
    """``sparsemod dashboard``: the service's pages and read endpoints over a local store,
    read-only, in a uvicorn child process.

    Raises:
        ConfigError: no store at the URL, or a non-loopback address without
            ``SPARSEMOD_API_TOKEN``.
        SparsemodError: uvicorn ended with an error.
    """
    import ipaddress

    from sparsemod.store import Store, default_url

    url = args.database or default_url(args.root)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise ConfigError(
            f"dashboard: no store at {url.removeprefix('sqlite:///')}: run a search first "
            "(python main.py), or name one with --database or --root"
        )
    Store(url).close()  # a bad URL or schema is said here, not in the child's log
    env = _server_env(args.root, url)
    env["SPARSEMOD_READ_ONLY"] = "1"
    try:
        loopback = args.host == "localhost" or ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = False
    if not env.get("SPARSEMOD_API_TOKEN", "").strip():
        if not loopback:
            raise ConfigError(
                f"dashboard: --host {args.host} is not a loopback address; set "
                "SPARSEMOD_API_TOKEN to serve it to other machines (the page asks for it)"
            )
        env["SPARSEMOD_DEV"] = "1"
    print(f"sparsemod: dashboard of {url} on http://{args.host}:{args.port}/ (Ctrl-C stops)")
    _children("dashboard", {"dashboard": _uvicorn(args.host, args.port)}, env)


def _children(what: str, commands: dict[str, list[str]], env: dict[str, str]) -> None:
    """Run child processes until Ctrl-C, SIGTERM or until one of them ends.

    Raises:
        SparsemodError: a child ended with an error.
    """
    import signal
    import subprocess
    import time

    procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM too stops the children before this process ends

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        while all(p.poll() is None for p in procs.values()):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)  # a worker queues its search again
        for p in procs.values():
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        signal.signal(signal.SIGTERM, previous)
    stopped = (0, 130, -signal.SIGINT, -signal.SIGTERM)
    failed = [f"{n} exited with code {p.returncode}" for n, p in procs.items()]
    failed = [f for f, p in zip(failed, procs.values()) if p.returncode not in stopped]
    if failed:
        raise SparsemodError(f"{what}: " + "; ".join(failed))
