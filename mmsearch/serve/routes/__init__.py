"""The HTTP routes, one module per resource: each holds a module-level ``router`` whose routes are plain functions.
A module added here is served (``routers()`` finds it); docs/layout.md shows which to copy."""

from __future__ import annotations

from fastapi import APIRouter

from mmsearch.plugins import discover


def routers() -> list[APIRouter]:
    """Every route module's router, in the modules' name order."""
    return [module.router for module in discover(__name__) if isinstance(getattr(module, "router", None), APIRouter)]
