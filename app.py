"""mmsearch: multimodal product search. ``python app.py`` serves the demo at http://127.0.0.1:7860: the Gradio app at
``/``, the REST API at ``/api`` (docs at ``/docs``), ``/metrics``, ``/healthz`` and ``/readyz``. Same as
``mmsearch serve``."""

import sys

from mmsearch.cli import serve as main

if __name__ == "__main__":
    sys.exit(main())
