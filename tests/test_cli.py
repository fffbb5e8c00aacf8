"""The ``mmsearch`` command and the thin entry points: subcommands, versions, and a help text for every flag."""

import argparse
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import mmsearch
from mmsearch import cli

ROOT = Path(__file__).resolve().parent.parent


class Captured(Exception):
    pass


def parser_of(command: str, monkeypatch) -> argparse.ArgumentParser:
    """The parser a subcommand builds, caught as it starts parsing."""
    seen = {}

    def capture(self, *args, **kwargs):
        seen["parser"] = self
        raise Captured

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(Captured):
        cli.COMMANDS[command][0]([], prog=f"mmsearch {command}")
    return seen["parser"]


@pytest.mark.parametrize("command", ["serve", "build", "train", "evaluate", "bench"])
def test_every_flag_of_every_command_says_what_it_does(command, monkeypatch):
    parser = parser_of(command, monkeypatch)
    flags = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert flags, command
    silent = [a.option_strings or a.dest for a in flags if not (a.help or "").strip()]
    assert not silent, f"mmsearch {command}: flags without help: {silent}"


def test_the_command_lists_its_subcommands_and_version():
    out = subprocess.run([sys.executable, "-m", "mmsearch.cli", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and all(c in out.stdout for c in ("serve", "build", "train", "evaluate", "bench"))
    version = subprocess.run([sys.executable, "-m", "mmsearch.cli", "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"mmsearch {mmsearch.__version__}"
    sub = subprocess.run([sys.executable, "-m", "mmsearch.cli", "build", "--help"], capture_output=True, text=True)
    assert sub.returncode == 0 and "usage: mmsearch build" in sub.stdout and "--index-kind" in sub.stdout
    wrong = subprocess.run([sys.executable, "-m", "mmsearch.cli", "launch"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr


def test_the_package_metadata_names_the_command_and_its_version():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["mmsearch"] == "mmsearch.cli:main"
    assert meta["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "mmsearch.__version__"


def test_the_build_command_takes_its_old_spellings_with_a_warning(tmp_path, capsys):
    argv = cli._old_build_spellings(["--out", str(tmp_path / "ix"), "--index", "hnsw", "--full"])
    assert argv == ["--index", str(tmp_path / "ix"), "--index-kind", "hnsw", "--full"]
    assert "--out is now --index" in capsys.readouterr().err
    assert cli._old_build_spellings(["--index=flat"]) == ["--index-kind", "flat"]
    (tmp_path / "flat").mkdir()  # a directory of that name is a directory
    assert cli._old_build_spellings(["--index", str(tmp_path / "flat")]) == ["--index", str(tmp_path / "flat")]


def test_old_spellings_are_taught_nowhere():
    """Accepted with a warning, but neither --help nor the documentation shows them."""
    shown = subprocess.run([sys.executable, "index_build.py", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert shown.returncode == 0 and "--index-kind" in shown.stdout
    assert "--out" not in shown.stdout and "INDEX_TYPE" not in shown.stdout
    docs = "".join(p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
    assert "INDEX_TYPE" not in docs and "/more_like_this" not in docs and "index_build.py --out" not in docs


def test_bench_runs_a_benchmark_with_its_own_flags(capsys):
    assert cli.main(["bench", "first_screen", "--help"]) == 0
    assert "--shots" in capsys.readouterr().out


def test_judgments_go_in_and_out_through_the_command_line(tmp_path, capsys):
    from mmsearch.cli import main

    data = tmp_path / "data"
    (tmp_path / "j.csv").write_text("query,item_id,grade,rater\nRed Mug,a,3,ann\nred mug,a,1,bob\n")
    assert main(["judgments", "import", str(tmp_path / "j.csv"), "--data-dir", str(data)]) == 0
    capsys.readouterr()
    assert main(["judgments", "export", "--format", "qrels", "--data-dir", str(data)]) == 0
    assert capsys.readouterr().out == "1 0 a 1\n"
    assert main(["judgments", "export", "--format", "topics", "--data-dir", str(data)]) == 0
    (tmp_path / "t.tsv").write_text(capsys.readouterr().out)
    (tmp_path / "q").write_text("1 0 b 2\n")
    assert (
        main(["judgments", "import", str(tmp_path / "q"), "--topics", str(tmp_path / "t.tsv"), "--data-dir", str(data)])
        == 2
    )  # qrels name no rater
    assert "--rater" in capsys.readouterr().err
    assert (
        main(
            [
                "judgments",
                "import",
                str(tmp_path / "q"),
                "--topics",
                str(tmp_path / "t.tsv"),
                "--rater",
                "trec",
                "--data-dir",
                str(data),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["judgments", "export", "--data-dir", str(data)]) == 0
    assert "red mug,b,2,trec" in capsys.readouterr().out
    (tmp_path / "bad.csv").write_text("query,item_id,grade,rater\nx,a,9,ann\n")
    assert main(["judgments", "import", str(tmp_path / "bad.csv"), "--data-dir", str(data)]) == 2
    assert "line 2" in capsys.readouterr().err


def test_the_judgments_commands_of_the_docs_run_as_written(tmp_path):
    import os
    import re
    import subprocess

    page = (ROOT / "docs" / "feedback.md").read_text()
    block = next(b for b in re.findall(r"```bash\n(.*?)```", page, re.S) if "judgments export" in b)
    env = os.environ | {"MMSEARCH_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    seed = tmp_path / "seed.csv"
    seed.write_text("query,item_id,grade,rater\nred mug,demo-00001,3,ann\nred mug,demo-00002,0,ann\n")
    run = dict(cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert subprocess.run([sys.executable, "-m", "mmsearch", "judgments", "import", str(seed)], **run).returncode == 0
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], **run)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "judged.qrels").read_text() == "1 0 demo-00001 3\n1 0 demo-00002 0\n"
    assert (tmp_path / "topics.tsv").read_text() == "1\tred mug\n"
    assert "imported 2 judgments" in done.stdout  # the qrels came back as the trec rater's


@pytest.mark.slow
def test_serve_refuses_a_match_background_it_cannot_read_with_a_message(
    tmp_path, demo_manifest, tiny_two_tower_dir, capsys
):
    args = ["--catalog", str(demo_manifest), "--model", f"two-tower:{tiny_two_tower_dir}", "--data-dir", str(tmp_path)]
    args += ["--duplicate-threshold", "0", "--match-affinity", "0.1", "--match-background", str(tmp_path / "none.txt")]
    assert cli.serve(args) == 2
    assert "cannot read the match background" in capsys.readouterr().err
