"""Where each replica's metrics are scraped under ``app.py --replicas``: the shared port answers from whichever
replica the proxy picks, so Prometheus must scrape every replica on its own port and sum. Replicas join a small Ray
actor (made by the first, detached so that it outlives any one replica; a local Ray's stop ends it), and
``/metrics/targets`` lists the live ones in Prometheus' HTTP service discovery format."""

from __future__ import annotations

import socket

NAMESPACE = "mmsearch"
NAME = "mmsearch-replicas"


class Roster:
    """Each replica's metrics address, by replica; a replica that no longer answers (killed and replaced) leaves
    the list the first time it is read."""

    def __init__(self):
        self.targets: dict[str, str] = {}

    def add(self, replica: str, address: str) -> None:
        self.targets[replica] = address

    def live(self) -> dict[str, str]:
        alive = {}
        for replica, address in list(self.targets.items()):
            host, _, port = address.rpartition(":")
            try:
                socket.create_connection((host, int(port)), timeout=0.5).close()
                alive[replica] = address
            except OSError:
                self.targets.pop(replica, None)
        return alive


def join(replica: str, address: str) -> None:
    """A replica's metrics address, added from inside the replica. The roster is made by the first replica that
    joins and outlives it (detached): a replica killed first must not take the others' addresses with it."""
    import ray

    roster = ray.remote(num_cpus=0)(Roster).options(
        name=NAME, namespace=NAMESPACE, get_if_exists=True, lifetime="detached"
    )
    roster.remote().add.remote(replica, address)


def targets() -> list[dict]:
    """Every live replica's metrics address, as Prometheus' http_sd_configs read them."""
    import ray

    try:
        roster = ray.get_actor(NAME, namespace=NAMESPACE)
    except ValueError:
        return []
    live = ray.get(roster.live.remote(), timeout=10)
    return [{"targets": [address], "labels": {"replica": replica}} for replica, address in sorted(live.items())]
