"""The catalog's pictures as a pretrained tower sees them: a threshold under which 99% of the catalog's own pictures
(and then some) stand, kept beside the index."""

import numpy as np

from mmsearch.index.picture_sample import PictureSample, sampled_rows


def cluster(n: int, seed: int, spread: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=64)
    return centre + spread * np.linalg.norm(centre) * rng.normal(size=(n, 64)) / 8


def test_pictures_like_the_catalog_are_familiar_and_others_not(tmp_path):
    catalog = cluster(200, 0)
    sample = PictureSample.of(catalog)
    assert 0 < sample.threshold < 1
    assert sample.familiar(cluster(1, 0)[0] + 0.01)  # one more of the same kind
    assert not sample.familiar(cluster(1, 7)[0])  # another kind of picture altogether
    nearest_other = (lambda f: np.sort(f @ f.T, axis=1)[:, -2])(sample.features)
    assert np.mean(nearest_other >= sample.threshold) >= 0.99
    sample.save(tmp_path)
    again = PictureSample.load(tmp_path)
    assert again.threshold == sample.threshold and again.tower == sample.tower
    assert np.allclose(again.features, sample.features, atol=1e-3)  # float16 on disk


def test_an_index_without_a_sample_and_a_lone_picture_judge_nothing(tmp_path):
    assert PictureSample.load(tmp_path) is None
    assert PictureSample.of(cluster(1, 0)).familiar(cluster(1, 5)[0])


def test_the_sample_is_fixed_and_bounded():
    assert list(sampled_rows(5)) == [0, 1, 2, 3, 4]
    rows = sampled_rows(10_000)
    assert len(rows) == 512 and (np.diff(rows) > 0).all() and np.array_equal(rows, sampled_rows(10_000))
