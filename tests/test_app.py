"""app.py's start-up decisions that end before a server starts: a missing or mismatched index is a message."""

import pytest

import app
from mmsearch import settings
from mmsearch.builder.pipeline import build_index


def test_missing_index_is_a_clear_error(tmp_path, tiny_two_tower_dir, capsys):
    code = app.main(
        [
            "--index",
            str(tmp_path / "nothing"),
            "--model",
            f"two-tower:{tiny_two_tower_dir}",
            "--data-dir",
            str(tmp_path),
        ]
    )
    assert code == 2 and "no index at" in capsys.readouterr().err


@pytest.mark.slow
def test_index_of_another_model_is_refused(tmp_path, tiny_two_tower_dir, tiny_clip_spec, demo_manifest, capsys):
    build_index(
        settings.Settings(
            data_dir=tmp_path / "d",
            catalog=str(demo_manifest),
            index=tmp_path / "ix",
            model=f"two-tower:{tiny_two_tower_dir}",
            workers=1,
            duplicate_threshold=0,
        )
    )
    code = app.main(["--index", str(tmp_path / "ix"), "--model", tiny_clip_spec, "--data-dir", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 2 and "was built with 'two-tower:tiny-tt@" in err and "rebuild it" in err


def test_unknown_model_is_a_clear_error(tmp_path, capsys):
    assert app.main(["--model", "clip:NoSuchNet/x", "--data-dir", str(tmp_path)]) == 2
    assert "unknown open_clip model" in capsys.readouterr().err
