"""The one builder from settings dataclasses to command lines and environments.

Each field of a settings dataclass is a ``--flag`` whose help is the field's ``help`` metadata, and an environment
variable, ``MMSEARCH_<NAME>`` (or the class's ``ENV_PREFIX`` + name). Flags win over variables, variables over a
preset, a preset over the defaults. Booleans take ``--flag`` / ``--no-flag``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from mmsearch.resources import ASSETS_DIR, default_data_dir


def env_name(cls: type, name: str) -> str:
    return getattr(cls, "ENV_PREFIX", "MMSEARCH_") + name.upper()


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def cast(kind: object, raw: str) -> object:
    """A variable's text as the field's type (the annotation, a string under ``from __future__ import annotations``)."""
    kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    if "bool" in kind_name:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if "int" in kind_name:
        return int(raw)
    if "float" in kind_name:
        return float(raw)
    if "Path" in kind_name:
        return Path(raw) if raw else None
    return raw


def _default(f: dataclasses.Field) -> object:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def add_settings(parser: argparse.ArgumentParser, *groups: type) -> None:
    """Adds a flag for every field of each settings dataclass, in an argument group titled by its docstring's first
    line. Unset flags stay None, so that variables, a preset and the defaults fill them (``settings_from``)."""
    for group in groups:
        own = [f for f in dataclasses.fields(group) if f.name in group.__dict__.get("__annotations__", {})]
        section = parser.add_argument_group((group.__doc__ or group.__name__).strip().splitlines()[0])
        for f in own:
            meta, default = f.metadata, _default(f)
            shown = "" if default in ("", None) else f" (default: {default})"
            kwargs = {
                "dest": f.name,
                "default": None,
                "help": f"{meta.get('help', '')}{shown} [{env_name(group, f.name)}]",
            }
            if "bool" in str(f.type):
                section.add_argument(flag_name(f.name), action=argparse.BooleanOptionalAction, **kwargs)
                continue
            for key in ("choices", "nargs", "const", "metavar"):
                if key in meta:
                    kwargs[key] = meta[key]
            section.add_argument(flag_name(f.name), type=lambda raw, t=f.type: cast(t, raw), **kwargs)


def environment(cls: type, env: dict[str, str] | None = None) -> dict[str, object]:
    """The fields of ``cls`` that ``env`` sets, typed."""
    env = os.environ if env is None else env
    typed = {}
    for f in dataclasses.fields(cls):
        if (key := env_name(cls, f.name)) in env:
            try:
                typed[f.name] = cast(f.type, env[key])
            except ValueError as exc:  # said with the variable's name, not only Python's words
                raise ValueError(f"{key}={env[key]!r} is not a valid value: {exc}") from None
    return typed


def settings_from(cls: type, env: dict[str, str] | None = None, base: dict | None = None, **overrides: object):
    """``cls`` from its defaults, then ``base`` (a preset), then ``env``, then ``overrides`` that are not None."""
    values = dict(base or {}) | environment(cls, env)
    values |= {k: v for k, v in overrides.items() if v is not None}
    return cls(**values)


def overrides(args: argparse.Namespace, cls: type) -> dict[str, object]:
    """The flags of ``cls`` that were given."""
    known = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in known and v is not None}


def renamed(argv: list[str] | None, old: str, new: str) -> list[str]:
    """``argv`` with a flag's old spelling replaced by the new one, and a warning saying so."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out = []
    for arg in argv:
        if arg == old or arg.startswith(old + "="):
            print(f"warning: {old} is now {new}; the old spelling will be removed", file=sys.stderr)
            arg = new + arg[len(old) :]
        out.append(arg)
    return out


def markdown_table(group: type) -> str:
    """The settings of one group as the documentation's table: flag, variable, default, what it does."""
    rows = ["| flag | variable | default | what it does |", "| --- | --- | --- | --- |"]
    for f in dataclasses.fields(group):
        if f.name not in group.__dict__.get("__annotations__", {}):
            continue
        default = f.default_factory if f.default_factory is not dataclasses.MISSING else f.default
        if default is default_data_dir:
            shown = "`data/` in a checkout, else `$XDG_DATA_HOME/mmsearch`"
        elif isinstance(default, (str, Path)) and str(default).startswith(str(ASSETS_DIR)):
            shown = f"`assets/{Path(default).relative_to(ASSETS_DIR)}`"
        else:
            shown = "" if default in ("", None) else f"`{default}`"
        text = str(f.metadata.get("help", "")).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        rows.append(f"| `{flag_name(f.name)}` | `{env_name(group, f.name)}` | {shown} | {text} |")
    return "\n".join(rows)
