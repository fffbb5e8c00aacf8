"""What goes wrong with the feature store, as the rest of mmsearch catches it."""


class FeatureStoreError(RuntimeError):
    """The feature store cannot be opened or written (bad online-store setting, unreachable Redis, ...)."""


class StoreUnavailable(FeatureStoreError):
    """The online store did not answer a read (locked, missing, damaged, unreachable or too slow), or lacks rows the
    loaded index needs. Searches cannot show listings until it does; the service stays up and says so (``/readyz``)."""
