"""``python -m mmsearch.evaluate``: measures a model or the search quality (see mmsearch/evaluate/cli.py)."""

import sys

from mmsearch.evaluate.cli import main

sys.exit(main())
