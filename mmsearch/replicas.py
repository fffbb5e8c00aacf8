"""``python app.py --replicas N``: the whole server (REST, agent tools, the Gradio UI, metrics) run as N Ray Serve
replicas behind Ray's HTTP proxy on the one port, on a local Ray or the cluster ``--ray`` names.

- Every replica opens the index itself: the index directory (on a disk every node reads) or the shared vector store
  (``--vector-store milvus://``) is what they share, with Redis and PostgreSQL for listings, events and judgments.
- A build reaches every replica as it reaches one process: each watches the index directory every
  ``--reload-interval`` seconds and swaps the new build in whole (with Milvus, the build's collection is behind the
  alias all replicas read). Each answer names the build that made it (``X-MMSearch-Build``) and its replica
  (``X-MMSearch-Replica``). Not Serve's ``reconfigure``: from Python, every ``serve.run`` is a new code version, and
  handing replicas a new setting that way restarted them one by one (measured: 18 s with one replica fewer).
- Gradio keeps a visitor's session (its queue, its events' state) in one process, so the UI must not be spread: the
  page sets a session cookie, and the proxy routes every request carrying it to the same replica (rendezvous on a
  consistent-hash ring: a replica lost or added moves only its own sessions). REST calls without the cookie are
  spread over all replicas.
- A replica that dies (SIGKILL, out of memory) is replaced by Serve's controller; its metrics come from its own port,
  listed for Prometheus at ``/metrics/targets`` (HTTP service discovery), so Prometheus sums them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import re
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor

from mmsearch.serve import roster
from mmsearch.settings import Settings

# Ray Serve's proxy reads a request's session from the header this variable names (default x-session-id, which a
# browser never sends); the Cookie header is what every request of a page carries. Set before Ray starts, so its
# proxy inherits it; a cluster started by hand needs it in its environment (docs/replicas.md).
SESSION_HEADER_VARIABLE = "RAY_SERVE_SESSION_ID_HEADER_KEY"
APP_NAME = roster.NAMESPACE
DEPLOYMENT_NAME = "server"
log = logging.getLogger("mmsearch.serve")


class Replica:
    """One whole server inside a Ray Serve replica: the same app ``python app.py`` serves alone."""

    def __init__(self, config: Settings):
        from ray import serve

        from mmsearch.serve import monitoring
        from mmsearch.service import create_app, open_searchers

        self.name = serve.get_replica_context().replica_id.unique_id
        self.searchers = open_searchers(config)
        for s in {id(x): x for x in self.searchers if x is not None}.values():
            s.loaded.watch()  # a new build reaches each replica as it reaches one process (see the module's doc)
        self.server = create_app(*self.searchers)
        self.server.state.replica = {"id": self.name, "pid": os.getpid(), "node": _node_address()}
        # A local Ray's replicas listen where the service does (loopback by default); a cluster's on their node.
        local = config.ray in ("", "local") and config.host not in ("0.0.0.0", "::")
        bind = config.host if local else _node_address()
        address = monitoring.serve_metrics(bind, self.server.state.deployment.credentials)
        roster.join(self.name, address)

    def __serve_build_asgi_app__(self):
        from mmsearch.serve.sticky import ReplicaHeaders

        return ReplicaHeaders(self.server, self.name)


def _node_address() -> str:
    import ray

    return ray.util.get_node_ip_address()


def _connect(config: Settings) -> str | None:
    """Starts a local Ray, or joins the cluster --ray names; None, or why not in a line for people."""
    import ray

    os.environ.setdefault(SESSION_HEADER_VARIABLE, "cookie")
    try:
        if config.ray in ("", "local"):
            # A Ray of its own (not one another program started here); no dashboard: a process and memory that
            # serving does not need on a small machine.
            ray.init(address="local", include_dashboard=False, namespace=APP_NAME)
        else:
            ray.init(address=config.ray, namespace=APP_NAME)
    except (ConnectionError, RuntimeError) as exc:
        # Ray 2.60's clusters check a token by default: a client without it is refused as if nothing listened.
        return (
            f"could not reach the Ray cluster at {config.ray!r}: {exc} (a cluster with token authentication also "
            "needs RAY_AUTH_MODE=token here, and its token in ~/.ray/auth_token or RAY_AUTH_TOKEN)"
        )
    return None


def _too_many(config: Settings) -> str | None:
    """Why a local Ray cannot hold the replicas asked for (Serve would wait for the CPUs forever), or None. A
    cluster's autoscaler may add nodes, so a cluster is not judged here."""
    if config.ray not in ("", "local"):
        return None
    need, have = config.replicas * _replica_cpus(config), os.cpu_count() or 1
    if need <= have:
        return None
    return (
        f"{config.replicas} replicas at {_replica_cpus(config):g} CPUs each need {need:g} CPUs; this machine has "
        f"{have}: lower --replica-cpus or --replicas"
    )


def _replica_cpus(config: Settings) -> float:
    if config.replica_cpus > 0:
        return config.replica_cpus
    if config.ray not in ("", "local"):
        return 1.0
    return min(1.0, round((os.cpu_count() or 1) / config.replicas, 2))


def _application(config: Settings):
    from ray import serve
    from ray.serve.config import RequestRouterConfig

    deployment = serve.deployment(
        serve.ingress()(Replica),
        name=DEPLOYMENT_NAME,
        num_replicas=config.replicas,
        ray_actor_options={"num_cpus": _replica_cpus(config)},
        request_router_config=RequestRouterConfig(
            request_router_class="mmsearch.serve.sticky.StickySessions",
            request_router_kwargs={"num_fallback_replicas": 0},
        ),
        graceful_shutdown_timeout_s=5,  # as one process waits for its requests in flight
        health_check_period_s=2,
    )
    return deployment.bind(config)


def application(args: dict | None = None):
    """The replicas as a Serve application for a Serve config file (``serve deploy``, KubeRay's RayService):
    ``import_path: mmsearch.replicas:application`` with ``args`` naming settings (``replicas: 4``,
    ``vector_store: milvus://...``) over the ``MMSEARCH_*`` variables. Its index must be built first
    (``index_build.py``), and ``RAY_SERVE_SESSION_ID_HEADER_KEY=cookie`` set on every node."""
    return _application(settings_of(args or {}))


def settings_of(args: dict) -> Settings:
    """A config file's ``args`` read as the same settings' variables are (unknown names refused)."""
    from mmsearch import flags
    from mmsearch.settings import from_env

    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(args) - known)
    if unknown:
        raise ValueError(f"unknown settings in args: {', '.join(unknown)} (see docs/configuration.md)")
    env = {**os.environ, **{flags.env_name(Settings, name): str(value) for name, value in args.items()}}
    config = from_env(env)
    return config if config.replicas > 0 else dataclasses.replace(config, replicas=1)


def _prepare(config: Settings) -> tuple[str, str | None]:
    """(the build served, None), or ("", why the service cannot start)."""
    from mmsearch.feedback.database import DatabaseError, open_configured
    from mmsearch.service import OPENING_ERRORS, open_searchers

    try:
        build = open_searchers(config)[0].snapshot.build
        open_configured(config).dispose()
    except (*OPENING_ERRORS, DatabaseError) as exc:
        return "", str(exc)
    return build, None


def serve_replicated(config: Settings) -> int:
    """Runs the replicas until SIGTERM or Ctrl-C; 2 when the index cannot be made or a replica cannot start."""
    try:
        import ray
        from ray import serve
    except ImportError as exc:
        print(f"error: --replicas needs Ray Serve: pip install 'ray[serve]' ({exc})", file=sys.stderr)
        return 2
    if too_many := _too_many(config):
        print(f"error: {too_many}", file=sys.stderr)
        return 2
    # Opened once before any replica, as one process would: a missing index is built (not by every replica at once),
    # the database is made or migrated, and what cannot be opened is said in one line. In a child process: what it
    # loads (torch, the index: 1.3 GB at 100,000 items) would otherwise stay in this one while it only waits.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        build, failed = pool.submit(_prepare, config).result()
    if failed:
        print(f"error: {failed}", file=sys.stderr)
        return 2
    failed = _connect(config)
    if failed:
        print(f"error: {failed}", file=sys.stderr)
        return 2
    serve.start(
        http_options={"host": config.host, "port": config.port, "keep_alive_timeout_s": int(config.keep_alive_s)}
    )
    try:
        serve.run(_application(config), name=APP_NAME, route_prefix="/")
    except RuntimeError as exc:  # a replica's constructor failed: the deployment's status says why
        print(f"error: the replicas could not start: {_why_not_started(exc)}", file=sys.stderr)
        serve.shutdown()
        ray.shutdown()
        return 2
    url = f"http://{config.host}:{config.port}"
    print(json.dumps({"replicas": config.replicas, "url": url, "api_docs": f"{url}/docs", "build": build}), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1):  # a wait without a timeout would not wake for the signal's handler
        pass
    serve.shutdown()  # each replica writes what waits for its batch (about 3 s in all for two, idle)
    ray.shutdown()
    return 0


def _why_not_started(exc: BaseException) -> str:
    """The replica's own error (the last 'SomeError: message' line of its traceback), not Serve's summary."""
    from ray import serve

    try:
        said = serve.status().applications[APP_NAME].deployments[DEPLOYMENT_NAME].message
    except (KeyError, AttributeError):
        said = str(exc)
    errors = [line.strip() for line in said.splitlines() if re.match(r"\s*[\w.]+(Error|Exception): ", line)]
    return errors[-1] if errors else (said.strip().splitlines() or [type(exc).__name__])[-1]
