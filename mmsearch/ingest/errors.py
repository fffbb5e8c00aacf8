"""The error every catalog source raises when a catalog as a whole cannot be read."""


class CatalogError(ValueError):
    """The catalog as a whole cannot be read (missing file, no item_id/image column, a dataset not installed, ...)."""
