"""The image tower in ONNX Runtime: the features torch gives, exported once into the user's cache, and torch again
wherever that cannot be had."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from mmsearch.encode import tower_runtime
from mmsearch.encode.image_towers import ImageTower, load_tower
from mmsearch.encode.pretrained import PretrainedError

pytest.importorskip("onnxruntime")
SIDE = 96  # the smallest side any model here uses: the export takes the same time, the runs less


@pytest.fixture(scope="module")
def tower():
    try:
        return load_tower("efficientnet-lite0", SIDE).eval()
    except PretrainedError as exc:
        pytest.skip(f"{exc}")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture()
def cached(cache, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache / "mmsearch" / "towers"


def photos(tower, n: int) -> torch.Tensor:
    skimage = pytest.importorskip("skimage.data")
    pictures = [skimage.coffee(), skimage.chelsea(), skimage.astronaut(), skimage.rocket()][:n]
    return torch.stack([tower.preprocess(Image.fromarray(p).convert("RGB")) for p in pictures])


def test_it_gives_torchs_features_at_any_batch_size(tower, cached):
    runtime = tower_runtime.runtime_tower(tower)
    assert isinstance(runtime, tower_runtime.RuntimeTower)
    assert (runtime.name, runtime.size, runtime.width) == (tower.name, tower.size, tower.width)
    for n in (1, 3):
        pixels = photos(tower, n)
        with torch.inference_mode():
            pooled, probabilities = tower(pixels)
        got_pooled, got_probabilities = runtime(pixels)
        assert got_pooled.shape == (n, 1280) and got_probabilities.shape == (n, 1000)
        assert torch.allclose(got_pooled, pooled, atol=1e-4)
        assert torch.allclose(got_probabilities, probabilities, atol=1e-5)
        assert torch.equal(got_probabilities.argmax(1), probabilities.argmax(1))


def test_the_export_is_kept_and_opened_by_the_next_process(tower, cached, monkeypatch):
    tower_runtime.runtime_tower(tower)
    kept = list(cached.glob("efficientnet-lite0-96-*.onnx"))
    assert len(kept) == 1 and kept[0].stat().st_size > 10_000_000

    def no_export(tower):
        raise AssertionError("exported again")

    monkeypatch.setattr(tower_runtime, "exported", no_export)
    assert isinstance(tower_runtime.runtime_tower(tower), tower_runtime.RuntimeTower)


def test_a_cached_file_cut_short_is_exported_again(tower, cached, caplog):
    tower_runtime.runtime_tower(tower)
    (kept,) = cached.glob("efficientnet-lite0-96-*.onnx")
    kept.write_bytes(kept.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING, "mmsearch.encode"):
        runtime = tower_runtime.runtime_tower(tower)
    assert isinstance(runtime, tower_runtime.RuntimeTower) and "does not open" in caplog.text
    assert kept.stat().st_size > 10_000_000
    pixels = photos(tower, 1)
    with torch.inference_mode():
        assert torch.allclose(runtime(pixels)[0], tower(pixels)[0], atol=1e-4)


def test_torch_runs_it_where_the_runtime_cannot(tower, cached, monkeypatch, caplog):
    for kept in cached.glob("*.onnx"):
        kept.unlink()

    def broken(tower):
        raise RuntimeError("no exporter here")

    monkeypatch.setattr(tower_runtime, "exported", broken)
    with caplog.at_level(logging.WARNING, "mmsearch.encode"):
        assert tower_runtime.runtime_tower(tower) is tower
    assert "runs in torch" in caplog.text and "no exporter here" in caplog.text
    assert tower_runtime.runtime_tower(tower, "cuda") is tower  # a GPU runs torch, nothing exported
    assert isinstance(tower, ImageTower) and not list(cached.glob("*.onnx"))


def test_a_read_only_cache_still_runs_it(tower, tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache's folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    runtime = tower_runtime.runtime_tower(tower)
    assert isinstance(runtime, tower_runtime.RuntimeTower)
    pixels = photos(tower, 2)
    assert np.isfinite(runtime(pixels)[0].numpy()).all()


@pytest.fixture(scope="module")
def minilm():
    from mmsearch.encode.text_towers import load_text

    try:
        return load_text("sentence-transformers/all-MiniLM-L6-v2")
    except PretrainedError as exc:
        pytest.skip(f"{exc}")


def test_a_text_towers_queries_run_in_the_runtime_with_torchs_vectors(minilm, cached):
    run = tower_runtime.runtime_text(minilm.name, minilm.sha256, minilm.module, minilm.max_length)
    assert run is not None and list(cached.glob("text-sentence-transformers--all-MiniLM-L6-v2-*.onnx"))
    texts = ["a cat", "una taza de café con leche", "a red striped t-shirt for a summer day at the sea"]
    for batch in ([texts[0]], [texts[2]], texts):  # one query, a long one, and a padded batch
        tok = minilm.tokenizer(batch, padding=True, truncation=True, max_length=minilm.max_length, return_tensors="pt")
        with torch.inference_mode():
            eager = minilm.module.encode_text(tok["input_ids"], tok["attention_mask"])
        assert torch.allclose(run(tok["input_ids"], tok["attention_mask"]), eager, atol=1e-5)


def test_a_query_takes_the_runtime_and_torch_where_it_cannot(minilm, cached, monkeypatch, caplog):
    from mmsearch.encode.text_towers import load_text

    text = load_text(minilm.name)
    assert np.allclose(text.encode(["a cat"]), minilm.encode(["a cat", "a dog"])[:1], atol=1e-5)
    assert callable(text._graph) and not isinstance(text._graph, torch.jit.ScriptModule)
    for kept in cached.glob("text-*.onnx"):
        kept.unlink()

    def broken(what):
        raise RuntimeError("no exporter here")

    monkeypatch.setattr(tower_runtime, "exported", broken)
    again = load_text(minilm.name)
    with caplog.at_level(logging.WARNING, "mmsearch.encode"):
        vector = again.encode(["a cat"])
    assert "runs in torch" in caplog.text and isinstance(again._graph, torch.jit.ScriptModule)
    assert np.allclose(vector, text.encode(["a cat"]), atol=1e-5)


def test_a_forked_child_never_destroys_its_parents_sessions(tower, cached):
    import gc
    import multiprocessing
    import weakref

    runtime = tower_runtime.runtime_tower(tower)
    runtime(photos(tower, 1))
    alive = weakref.ref(runtime.session)
    cycle = [runtime]
    cycle.append(cycle)  # garbage that only the collector frees: as a session can be when a process forks
    del runtime, cycle

    def child(answer):
        gc.collect()  # would run the session's destructor, which waits on threads the child does not have
        answer.send(alive() is not None)

    gc.disable()
    try:
        receive, send = multiprocessing.get_context("fork").Pipe(duplex=False)
        process = multiprocessing.get_context("fork").Process(target=child, args=(send,))
        process.start()
        assert receive.poll(30) and receive.recv() is True  # kept alive in the child
        process.join(30)
        assert process.exitcode == 0
    finally:
        gc.enable()
    gc.collect()
    assert alive() is None  # the parent frees it as usual
