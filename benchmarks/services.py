"""What the fault benchmark and the tests start for real: ``python app.py`` in a child process, Debian's PostgreSQL
and redis-server on free loopback ports, each stopped as a crash would stop it and started again."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


# index_build.py killed (SIGKILL, no clean-up) the instant it would exchange its finished index with the served one.
KILLED_AT_THE_SWAP = """
import os, runpy, signal, sys
from mmsearch import atomic
atomic.exchange = lambda finished, served: os.kill(os.getpid(), signal.SIGKILL)
sys.argv = ["index_build.py", *sys.argv[1:]]
runpy.run_path("index_build.py", run_name="__main__")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_program(name: str) -> str | None:
    """Debian keeps PostgreSQL's server programs out of PATH, under /usr/lib/postgresql/<version>/bin."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class PostgresServer:
    """A server of its own with a database ``mmsearch_tests`` (run as the ``postgres`` user under root, which
    PostgreSQL refuses); ``stop`` and ``start`` keep its data and port."""

    def __init__(self, initdb: str, pg_ctl: str):
        self.pg_ctl = pg_ctl
        # Not under pytest's own temporary directory: that one is private to root, and the server runs as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="mmsearch-postgres-"))
        self.data, sockets = self.root / "data", self.root / "sockets"
        sockets.mkdir()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(sockets, "postgres")
            self.root.chmod(0o755)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        self.options = f"-p {self.port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=on"
        init = [*self.as_user, initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"]
        subprocess.run(init, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.start()
        import psycopg

        for _ in range(100):
            try:
                dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
                with psycopg.connect(dsn, autocommit=True) as c:
                    c.execute("CREATE DATABASE mmsearch_tests")
                break
            except psycopg.OperationalError:
                time.sleep(0.1)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/mmsearch_tests"

    def _ctl(self, *args: str, check: bool = True) -> None:
        command = [*self.as_user, self.pg_ctl, "-D", str(self.data), *args]
        subprocess.run(command, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        self._ctl("-o", self.options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        """As a crash: no checkpoint, connections cut."""
        self._ctl("-m", "immediate", "stop", check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """``redis-server`` keeping nothing on disk: after ``kill`` and ``start`` it is back, and empty."""

    def __init__(self, program: str, directory: Path):
        self.program, self.directory = program, directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        import redis

        flags = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            [self.program, *flags, "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis(host="127.0.0.1", port=self.port)
        for _ in range(100):
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def bind_reusing(port: int) -> socket.socket | None:
    """The Milvus wheel's port check (a bound, listening socket, or None) with SO_REUSEADDR, as Milvus's own Go
    listeners bind. Without it a port whose connections are in TIME_WAIT (a minute after the server stopped) looks
    taken: the wheel moved the restarted server's parts one port on, onto ports its etcd still named for other parts,
    and its proxy stopped at "unknown service milvus.proto.query.QueryCoord". A port something listens on is still
    refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        return sock
    except OSError:
        sock.close()
        return None


class MilvusServer:
    """A Milvus standalone server (the real engine, from PyPI's ``milvus`` wheel: embedded etcd, local storage) in
    ``directory``; its ports move when taken, so ``url`` is read after it started. Its components are told
    127.0.0.1, which it advertises, though this build still listens on every interface (docs/vector-stores.md)."""

    PARTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexCoord", "indexNode", "dataCoord", "dataNode")

    def __init__(self, directory: Path):
        from milvus import MilvusServer as Server
        from milvus import MilvusServerConfig

        self.server = Server(MilvusServerConfig())
        self.server.show_startup_banner = False
        self.server.set_base_dir(str(directory))
        for part in self.PARTS:
            self.server.config.set(f"{part}.ip", "127.0.0.1")
        self.server.config.try_bind_port = bind_reusing
        self.start()

    def start(self, directory: Path | None = None) -> None:
        """Starts it (again), in ``directory`` when given. Restarted after a kill in the same directory, it waits about
        50 s for the dead one's sessions in its etcd to expire; a new directory starts in 7-10 s, empty."""
        if directory is not None:
            self.server.set_base_dir(str(directory))
        self.server.start()  # returns once the proxy answers
        self.url = f"milvus://127.0.0.1:{self.server.listen_port}"

    @property
    def running(self) -> bool:
        return self.server.server_proc is not None and self.server.server_proc.poll() is None

    def kill(self) -> None:
        self.server.server_proc.kill()
        self.server.server_proc.wait(30)
        self.server.server_proc = None
        self.server.stop()  # closes its log files

    def stop(self) -> None:
        self.server.stop()  # SIGTERM, and SIGKILL a second later: under load a graceful stop took over 60 s


class RunningApp:
    """``python app.py`` in a child process on a free loopback port, as a user starts it; ``kill`` is ``kill -9``, and
    ``start`` again serves the same data on the same port."""

    def __init__(
        self, data: Path, env: dict[str, str], timeout: float = 180, command: list[str] | None = None, cwd: Path = ROOT
    ):
        self.data, self.timeout, self.cwd = data, timeout, cwd
        self.command = command or [sys.executable, str(ROOT / "app.py")]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = data / f"app-{self.port}.log"
        self.env = {  # a value of None leaves that variable out
            k: v
            for k, v in (
                os.environ
                | {
                    "MMSEARCH_DATA_DIR": str(data),
                    "MMSEARCH_PORT": str(self.port),
                    "MMSEARCH_WORKERS": "1",
                    "GRADIO_ANALYTICS_ENABLED": "False",
                }
                | env
            ).items()
            if v is not None
        }
        self.start()

    def start(self) -> None:
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            self.command, cwd=self.cwd, stdout=self._log, stderr=subprocess.STDOUT, env=self.env
        )
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited early:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.url + "healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)
        tail = self.log()[-3000:]
        self.stop()
        raise RuntimeError(f"app did not start within {self.timeout:.0f} s:\n{tail}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except Exception:  # noqa: BLE001 - a stuck child is killed
            self.proc.kill()
        self._log.close()


class Counted:
    """A request body sent as it is generated, counting what the server took before it answered."""

    def __init__(self, head: bytes, megabytes: int, tail: bytes = b""):
        self.head, self.megabytes, self.tail, self.sent = head, megabytes, tail, 0

    def __iter__(self):
        yield self.head
        for _ in range(self.megabytes):
            self.sent += 1
            yield b" " * 2**20
        yield self.tail
