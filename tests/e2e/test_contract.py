"""The REST API keeps its own contract: schemathesis reads /openapi.json of a running app and sends what the schema
allows and what it does not, every check on (server errors, status codes, content types, headers and bodies as
documented, schema-valid data accepted, schema-invalid data refused, unsupported methods), the stateful phase
included (results feeding the item, similar-items and event routes). Any finding fails the test, with the tool's own
report of it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
HERE = Path(__file__).resolve().parent


def test_every_route_keeps_the_contract_its_schema_states(open_app, tmp_path):
    st = shutil.which("st") or str(Path(sys.executable).parent / "st")
    command = [
        st,
        "run",
        open_app.url + "openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        "25",
        "--seed",
        "26",
        "--workers",
        "1",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    env = os.environ | {"SCHEMATHESIS_HOOKS": "schemathesis_hooks", "PYTHONPATH": str(HERE)}
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    summary = run.stdout[-6000:]
    assert run.returncode == 0, summary
    assert "No issues found" in run.stdout and "Stateful" in run.stdout, summary
