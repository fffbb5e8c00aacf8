"""Every example of the API and Agents pages (and the README's script example) runs as written against
``python app.py`` with the demo: curl lines in bash, Python blocks in a fresh interpreter, in a folder holding a
``photo.jpg``. Only the address is changed."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "docs" / "api.md", ROOT / "docs" / "agents.md", ROOT / "docs" / "feedback.md", ROOT / "README.md"]
# The examples that talk to a running app (the README's other blocks install and start it).
BLOCKS = [
    (kind, code)
    for page in PAGES
    for kind, code in re.findall(r"```(bash|python)\n(.*?)```", page.read_text(), re.S)
    if "127.0.0.1:7860" in code
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, demo_app):
    work = tmp_path_factory.mktemp("docs-examples")
    pictures = sorted((demo_app.log_path.parent / "demo").rglob("*.jpg"))
    shutil.copy(pictures[7], work / "photo.jpg")
    return work


def test_the_api_pages_have_examples_of_each_kind():
    kinds = [kind for kind, _ in BLOCKS]
    assert kinds.count("bash") >= 2 and kinds.count("python") >= 2
    assert any("/api/search/image" in code for _, code in BLOCKS)
    assert any("download_files=False" in code for _, code in BLOCKS)


@pytest.mark.parametrize("n", range(len(BLOCKS)), ids=[f"{k}-{i}" for i, (k, _) in enumerate(BLOCKS)])
def test_docs_example_runs_as_written(n, demo_app, workdir):
    kind, code = BLOCKS[n]
    code = code.replace("http://127.0.0.1:7860", demo_app.url.rstrip("/"))
    cmd = ["bash", "-euo", "pipefail", "-c", code] if kind == "bash" else [sys.executable, "-c", code]
    run = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    if kind == "bash":
        assert run.stdout.strip() and '"error"' not in run.stdout and "event: error" not in run.stdout, run.stdout
        found = ('"results"', "event: complete", '"items"', '"query_id"')  # a search, a Gradio call, MCP, UBI lines
        assert any(word in run.stdout for word in found), run.stdout
