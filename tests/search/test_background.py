import pytest

from mmsearch.search.background import BackgroundError, names


def test_imagenet_names_come_from_torchvision_without_a_download():
    found = names("imagenet")
    assert len(found) >= 990 and "garden spider" in found and found == sorted(set(found))


def test_a_file_of_phrases_is_read_with_its_comments_left_out(tmp_path):
    path = tmp_path / "things.txt"
    path.write_text("# kitchen\nkettle\ntoaster  # two slots\n\nkettle\n", encoding="utf-8")
    assert names(str(path)) == ["kettle", "toaster"]
    assert names("") == [] and names("  ") == []


def test_a_background_that_cannot_be_read_says_what_to_give(tmp_path):
    with pytest.raises(BackgroundError, match="give 'imagenet', a file"):
        names(str(tmp_path / "missing.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(BackgroundError, match="holds no phrases"):
        names(str(empty))
