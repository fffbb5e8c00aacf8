import numpy as np
import pandas as pd

from mmsearch.evaluate import quality
from mmsearch.train.classification import neighbour_precision


def test_neighbour_precision_counts_same_label_neighbours_but_never_the_photo_itself():
    # Two tight clusters of three: each point's 2 nearest others share its label.
    points = np.asarray([[1, 0], [0.99, 0.1], [0.98, -0.1], [0, 1], [0.1, 0.99], [-0.1, 0.98]], dtype=np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    labels = np.asarray([0, 0, 0, 1, 1, 1])
    assert neighbour_precision(points, labels, k=2) == 1.0
    assert abs(neighbour_precision(points, labels, k=3) - 2 / 3) < 1e-9  # the third nearest is of the other cluster
    assert neighbour_precision(points, labels, k=2, block=4) == 1.0  # blocks change nothing


def test_judgements_by_category_expand_to_the_items_of_that_category():
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "category": ["Bag", "Coat", "Bag", "Dress"]})
    judged = {"q1": {"category:Bag": 2, "category:Coat": 1}, "q2": {"d": 2}}
    assert quality.resolve(judged, items) == {"q1": {"a": 2, "c": 2, "b": 1}, "q2": {"d": 2}}


def test_the_bundled_fashion_mnist_sets_load_with_dev_and_test_halves():
    queries, judged = quality.load_set("shopper")
    assert len(queries) >= 60 and set(queries["split"]) == {"dev", "test"}
    assert abs((queries["split"] == "dev").sum() - (queries["split"] == "test").sum()) <= 1
    assert all(any(k.startswith("category:") and g == 2 for k, g in judged[q].items()) for q in queries["qid"])
    categories, _ = quality.load_set("categories")
    assert len(categories) == 10
    assert quality.sets_for("fashion-mnist") == ("categories", "shopper") and quality.sets_for("shop.csv") == ()


def test_a_confusion_matrix_of_many_categories_keeps_those_most_often_in_a_mistake(tmp_path):
    from mmsearch.evaluate import classification

    names = [f"folder {i}" for i in range(30)]
    confusion = np.diag(np.full(30, 5))
    confusion[3, 17] = 4  # folder 3 taken for folder 17
    confusion[25, 3] = 2
    small, kept = classification.most_mistaken(confusion, names, most=3)
    assert kept == ["folder 3", "folder 17", "folder 25"] and small.tolist() == [[5, 4, 0], [0, 5, 0], [2, 0, 5]]
    assert classification.most_mistaken(confusion[:5, :5], names[:5])[1] == names[:5]  # few: all of them
    report = {"confusion": confusion.tolist(), "categories": names, "model": "m", "accuracy": 0.9}
    assert classification.plot(report, tmp_path / "c.png").stat().st_size > 10_000
