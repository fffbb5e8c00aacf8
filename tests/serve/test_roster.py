"""The replicas' metrics addresses: a replica that no longer answers leaves the list."""

import socket

from mmsearch.serve.roster import Roster


def test_only_replicas_that_answer_are_listed():
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    gone = socket.socket()
    gone.bind(("127.0.0.1", 0))
    gone_port = gone.getsockname()[1]
    gone.close()  # its port refuses now, as a killed replica's does
    roster = Roster()
    roster.add("alive", f"127.0.0.1:{listening.getsockname()[1]}")
    roster.add("killed", f"127.0.0.1:{gone_port}")
    assert set(roster.live()) == {"alive"}
    assert set(roster.targets) == {"alive"}  # forgotten, not probed again
    listening.close()
