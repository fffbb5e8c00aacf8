"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) in test_contract.py: what the schema cannot say.

What a picture is, for the image route's upload: the route's schema declares the upload's media types (image/jpeg,
image/png, ...), which JSON Schema cannot check by content; schemathesis draws random bytes for them unless told what
a file of each type looks like. These are its own smallest well-formed files of each type, so a positive test sends a
picture the server can decode, and a negative one still sends what it likes.

And a rule between two parameters: a search's offset + k may not pass the server's --max-k."""

import schemathesis
from hypothesis import strategies as st
from schemathesis.core.file_samples import MEDIA_TYPE_FILE_SAMPLES

for media_type, sample in MEDIA_TYPE_FILE_SAMPLES.items():
    schemathesis.openapi.media_type(media_type, st.just(sample))


# A rule a schema cannot state: a search's offset + k may not pass the server's --max-k (100 here; k defaults to
# top_k, 12). Such a request is refused with a 400 naming the rule; the cases drawn as valid stay within it.
MAX_K, TOP_K = 100, 12


def _within_max_k(fields) -> bool:
    if not isinstance(fields, dict):
        return True
    offset, k = fields.get("offset"), fields.get("k")
    offset = offset if isinstance(offset, int) and not isinstance(offset, bool) else 0
    k = k if isinstance(k, int) and not isinstance(k, bool) else TOP_K
    return offset + k <= MAX_K


@schemathesis.hook
def filter_query(ctx, query):
    return _within_max_k(query)


@schemathesis.hook
def filter_body(ctx, body):
    return _within_max_k(body)
