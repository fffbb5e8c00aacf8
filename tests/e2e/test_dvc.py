"""The DVC pipeline (dvc.yaml, params.yaml): its stage graph, and a small real `dvc repro` in a copy of the repo."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
STAGES = ["catalog", "train", "index", "evaluate"]


def dvc(*args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    exe = shutil.which("dvc") or str(Path(sys.executable).parent / "dvc")
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_the_stages_chain_catalog_model_index_figures():
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert list(spec["stages"]) == STAGES
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert {"catalog", "train", "index", "search"} <= set(params)
    stages = spec["stages"]
    assert "pipeline/catalog" in stages["index"]["deps"] and "assets/demo-model" in stages["index"]["deps"]
    assert "pipeline/index" in stages["evaluate"]["deps"]
    # Every parameter group feeds the stage that uses it, through the command.
    assert "${train.epochs}" in stages["train"]["cmd"] and "${index.kind}" in stages["index"]["cmd"]
    assert any("${search.keyword_weight}" in c for c in stages["evaluate"]["cmd"])


# The modules each stage's command runs, from its entry points (the index stage's index_build.py -> mmsearch/cli.py
# runs the build command alone).
STAGE_ENTRIES = {
    "catalog": ["mmsearch.ingest.demo"],
    "train": ["mmsearch.train.loop", "mmsearch.train"],
    "index": ["mmsearch.builder.pipeline", "mmsearch.settings", "mmsearch.flags"],
    "evaluate": ["mmsearch.evaluate.cli", "mmsearch.evaluate"],
}


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_depends_on_all_the_code_it_runs(stage):
    from conftest import PACKAGE_MODULES, package_imports

    deps = [d for d in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]["deps"]]
    seen, todo = set(), list(STAGE_ENTRIES[stage])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += package_imports(name)
    files = {str(PACKAGE_MODULES[m].relative_to(ROOT)) for m in seen if m != "mmsearch"}
    missing = sorted(f for f in files if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps))
    assert not missing, f"dvc.yaml's {stage} stage runs {missing} without depending on them"


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory) -> Path:
    """A copy of the project as committed plus what is being changed, with a 1-epoch training recipe."""
    pytest.importorskip("dvc", reason="dvc is in requirements.txt")
    repo = tmp_path_factory.mktemp("pipeline") / "mmsearch"
    ignore = shutil.ignore_patterns(".git", "data", "pipeline", "__pycache__", ".pytest_cache", "*.egg-info")
    shutil.copytree(ROOT, repo, ignore=ignore)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["catalog"]["heldout_per_combo"] = 1
    params["train"] |= {"epochs": 1, "renders": 640, "eval_per_combo": 1}
    params["evaluate"]["per_combo"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    (repo / "dvc.lock").unlink(missing_ok=True)
    for cmd in (
        ["git", "init", "-q"],
        # the repository's own identity: `dvc exp run` commits too, on a machine with no git identity of its user's
        ["git", "config", "user.name", "t"],
        ["git", "config", "user.email", "t@t"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "copy"],
    ):
        subprocess.run(cmd, cwd=repo, check=True)
    return repo


@pytest.mark.slow
def test_dvc_repro_runs_every_stage_then_has_nothing_to_do(small_repo):
    first = dvc("repro", cwd=small_repo, timeout=1500)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert all(f"Running stage '{s}'" in first.stdout for s in STAGES), first.stdout[-2000:]
    again = dvc("repro", cwd=small_repo)
    assert again.returncode == 0 and "Running stage" not in again.stdout
    metrics = json.loads(dvc("metrics", "show", "--json", cwd=small_repo).stdout)
    found = json.dumps(metrics)
    assert "precision_at_k" in found and "nDCG@10" in found and "R@10" in found
    plots = dvc("plots", "show", "--json", cwd=small_repo)
    assert plots.returncode == 0 and "train-curve.csv" in plots.stdout
    assert (small_repo / "pipeline" / "reports" / "quality.png").stat().st_size > 10_000
    # A local remote keeps the outputs: pushed, deleted, pulled back, and the pipeline is whole again.
    store = small_repo.parent / "dvc-store"
    assert dvc("remote", "add", "-d", "local", str(store), cwd=small_repo).returncode == 0
    assert dvc("push", cwd=small_repo).returncode == 0
    shutil.rmtree(small_repo / "pipeline" / "index")
    assert dvc("pull", cwd=small_repo).returncode == 0 and (small_repo / "pipeline" / "index" / "faiss.index").exists()
    assert "up to date" in dvc("status", cwd=small_repo).stdout
    # A parameter change re-runs the stages downstream of it, and only those.
    changed = dvc("exp", "run", "-S", "search.keyword_weight=0.5", cwd=small_repo, timeout=900)
    assert changed.returncode == 0, changed.stdout[-2000:] + changed.stderr[-2000:]
    assert "Running stage 'evaluate'" in changed.stdout and "Running stage 'train'" not in changed.stdout
