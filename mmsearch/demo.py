"""``python -m mmsearch.demo``, as pipelines written before the ingest stage had its package call it; the command is
now ``python -m mmsearch.ingest.demo`` (mmsearch/ingest/demo.py)."""

if __name__ == "__main__":
    import sys

    from mmsearch.ingest.demo import main

    sys.exit(main())
