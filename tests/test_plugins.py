"""Plug-in packages: a module added to one is found, and each package holds today's implementations."""

import sys

import pytest

from mmsearch.plugins import discover


def test_a_module_added_to_a_plugin_package_is_found_and_a_private_one_is_not(tmp_path, monkeypatch):
    package = tmp_path / "myplugins"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_base.py").write_text("SHARED = True\n")
    (package / "zebra.py").write_text("NAME = 'zebra'\n")
    (package / "alpha.py").write_text("NAME = 'alpha'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert [m.NAME for m in discover("myplugins")] == ["alpha", "zebra"]
    finally:
        for name in [n for n in sys.modules if n.startswith("myplugins")]:
            del sys.modules[name]


def test_each_plugin_package_holds_todays_implementations():
    from mmsearch.encode.encoders import load_encoder  # noqa: F401 (the models package's user)
    from mmsearch.index import kinds
    from mmsearch.ingest import datasets
    from mmsearch.serve.routes import routers

    assert list(kinds.kinds()) == ["flat", "hnsw", "ivfpq"]  # in the order their rules are tried
    assert set(datasets.datasets()) == {"demo", "fashion-mnist", "photos", "stamps"}
    assert {m.PREFIX for m in discover("mmsearch.encode.models")} == {"two-tower", "clip", "zero-shot"}
    paths = {route.path for router in routers() for route in router.routes}
    assert {"/api/search", "/api/search/image", "/api/items/{item_id}/similar", "/api/events", "/healthz"} <= paths


def test_an_unknown_kind_or_model_names_the_known_ones():
    from mmsearch.encode.encoders import EncoderError, load_encoder
    from mmsearch.index import kinds

    with pytest.raises(ValueError, match="use one of auto, flat, hnsw, ivfpq"):
        kinds.choose(10, 8, "annoy")
    with pytest.raises(
        EncoderError,
        match=r"use demo, fashion-mnist, zero-shot, .*clip:<arch>.*two-tower:<model dir.*, zero-shot:<image tower>",
    ):
        load_encoder("sentence:minilm", "cpu")
