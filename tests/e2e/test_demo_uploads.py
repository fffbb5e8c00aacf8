"""Uploads to the real demo through REST: its model maps every picture into its own small world, so a photo of an
astronaut stood as a good match for its renders; the catalog's pictures as a pretrained tower sees them tell the
two apart."""

import io

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def http(demo_app):
    with httpx.Client(base_url=demo_app.url, timeout=60) as client:
        yield client


def test_real_photos_uploaded_to_the_demo_are_weak_and_its_own_pictures_good(http):
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    def upload(image: Image.Image) -> dict:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=90)
        r = http.post("/api/search/image", files={"image": ("photo.jpg", buffer.getvalue(), "image/jpeg")})
        assert r.status_code == 200, r.text
        return r.json()

    photos = {"astronaut": skimage_data.astronaut(), "rocket": skimage_data.rocket(), "cat": skimage_data.chelsea()}
    photos["motorcycle"] = skimage_data.stereo_motorcycle()[0]
    weak = [name for name, pixels in photos.items() if upload(Image.fromarray(pixels))["match"] == "weak"]
    assert len(weak) >= 3, weak
    for hit in http.get("/api/search", params={"q": "bag", "k": 3}).json()["results"]:
        own = Image.open(io.BytesIO(http.get(hit["image_url"]).content)).resize((300, 300))
        assert upload(own)["match"] == "good", hit["item_id"]
