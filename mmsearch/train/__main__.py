"""``python -m mmsearch.train``: trains a two-tower model (see mmsearch/train/loop.py)."""

import sys

from mmsearch.train.loop import main

sys.exit(main())
