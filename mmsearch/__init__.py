"""mmsearch: multimodal product search over a catalog of images (words, pictures and similar items).

``mmsearch serve`` (or ``python app.py``) runs the app; ``mmsearch build`` (or ``python index_build.py``) builds or
updates an index; ``mmsearch --help`` lists the rest.
"""

__version__ = "0.4.0"
