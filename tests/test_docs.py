"""The documentation is true: every flag and variable the README and docs/ name exists, each command line names only
its command's flags, and the configuration page's tables are the settings as the code defines them."""

import argparse
import ast
import dataclasses
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # also run as a script (see the end)

from mmsearch import flags, settings
from mmsearch.evaluate.settings import EvaluateSettings
from mmsearch.train.settings import TrainSettings, TuneSettings

ROOT = Path(__file__).resolve().parent.parent
PAGES = {
    p.relative_to(ROOT).as_posix(): p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
}
# Other tools' flags the pages use, by tool.
FOREIGN = {
    "--backend-store-uri": "mlflow ui",
    "--build": "docker compose",
    "--check": "ruff format",
    "--strict": "mkdocs",
    "--head": "ray start",
    "--address": "ray start",
    "--num-cpus": "ray start",
    "--set": "helm install",
}
WORDS = {"--flag", "--no-flag"}  # the configuration page's words for a boolean's two spellings


def _options(*groups) -> set[str]:
    parser = argparse.ArgumentParser()
    flags.add_settings(parser, *groups)
    return {o for action in parser._actions for o in action.option_strings}


def _benchmark_options(script: Path) -> set[str]:
    found = {"--help"}
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            found |= {a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith("--")}
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_settings":
            found |= _options(settings.CatalogSettings)
    return found


COMMANDS = {
    r"(python app\.py|mmsearch serve)": _options(*settings.GROUPS["serve"]) | {"--help"},
    r"(python index_build\.py|mmsearch build)": _options(*settings.GROUPS["build"]) | {"--help"},
    r"(python -m mmsearch\.train|mmsearch train)": _options(TrainSettings, TuneSettings) | {"--help"},
    r"mmsearch judgments": _options(settings.CatalogSettings, settings.FeedbackSettings)
    | {"--help", "--format", "--topics", "--rater"},
    r"(python -m mmsearch\.evaluate|mmsearch evaluate)": _options(
        settings.CatalogSettings, settings.SearchSettings, settings.CompareSettings, EvaluateSettings
    )
    | {"--help"},
} | {
    rf"(python benchmarks/{s.stem}\.py|mmsearch bench {s.stem})": _benchmark_options(s)
    for s in sorted((ROOT / "benchmarks").glob("*.py"))
}
ALL = set().union(*COMMANDS.values())


def command_lines():
    """(page, line) for each command line in a code block, continuation lines joined."""
    for page, text in PAGES.items():
        for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, re.S):
            for line in block.replace("\\\n", " ").splitlines():
                yield page, line.split(" #")[0]


def test_each_command_line_names_only_flags_its_command_has():
    checked = 0
    for page, line in command_lines():
        for pattern, options in COMMANDS.items():
            for match in re.finditer(pattern, line):
                rest = re.split(r"&&|\||;", line[match.end() :])[0]
                unknown = [f for f in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rest) if f not in options]
                assert not unknown, f"{page}: {line.strip()!r} names {unknown}, which {match.group(0)} does not take"
                checked += 1
    assert checked > 20


def test_every_flag_the_pages_name_exists():
    for page, text in PAGES.items():
        for flag in set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text)):
            assert flag in ALL or flag in FOREIGN or flag in WORDS, f"{page} names {flag}, which no command has"


def test_every_variable_the_pages_name_exists():
    known = {
        flags.env_name(cls, f.name)
        for cls in (settings.Settings, TrainSettings, TuneSettings, EvaluateSettings)
        for f in dataclasses.fields(cls)
    } | set(settings.RENAMED_VARIABLES)
    for page, text in PAGES.items():
        for name in set(re.findall(r"MMSEARCH_[A-Z_]+[A-Z]", text)):
            assert name in known, f"{page} names {name}, which no setting reads"


GROUPS = [
    settings.CatalogSettings,
    settings.BuildSettings,
    settings.SearchSettings,
    settings.ServeSettings,
    settings.CompareSettings,
    settings.FeedbackSettings,
    TrainSettings,
    TuneSettings,
    EvaluateSettings,
]


def _table(group) -> re.Pattern:
    return re.compile(rf"(<!-- settings: {group.__name__} -->\n)(.*?)(\n<!-- end settings -->)", re.S)


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.__name__)
def test_the_configuration_page_lists_the_settings_as_the_code_defines_them(group):
    table = _table(group).search(PAGES["docs/configuration.md"])
    assert table, f"docs/configuration.md has no table for {group.__name__}"
    assert table.group(2) == flags.markdown_table(group), "run python tests/test_docs.py to write the tables anew"


def test_the_readme_stays_short_and_links_the_site():
    readme = PAGES["README.md"]
    assert len(readme.splitlines()) <= 200
    for page in ("docs/api.md", "docs/configuration.md", "docs/testing.md", "docs/layout.md"):
        assert f"]({page})" in readme


if __name__ == "__main__":  # python tests/test_docs.py: the configuration page's tables, written anew from the code
    page = ROOT / "docs" / "configuration.md"
    text = page.read_text()
    for group in GROUPS:
        text = _table(group).sub(lambda m, g=group: m.group(1) + flags.markdown_table(g) + m.group(3), text)
    page.write_text(text)
