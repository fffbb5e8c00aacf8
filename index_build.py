"""Builds or updates a search index (see ``python index_build.py --help``); the same as ``mmsearch build``."""

import sys

from mmsearch.cli import build as main

if __name__ == "__main__":
    sys.exit(main())
