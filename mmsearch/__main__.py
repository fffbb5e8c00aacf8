"""``python -m mmsearch``: the ``mmsearch`` command (serve, build, train, evaluate, bench, judgments)."""

import sys

from mmsearch.cli import main

sys.exit(main())
