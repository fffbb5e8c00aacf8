"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) in test_contract.py: what the schema cannot say.

What a picture is, for the image route's upload: the route's schema declares the upload's media types (image/jpeg,
image/png, ...), which JSON Schema cannot check by content; schemathesis draws random bytes for them unless told what
a file of each type looks like. These are its own smallest well-formed files of each type, so a positive test sends a
picture the server can decode, and a negative one still sends what it likes.

And what a schema cannot say: a rule between two parameters (a search's offset + k may not pass the server's
--max-k), and that a form carries text only."""

import schemathesis
from hypothesis import strategies as st
from schemathesis.core.file_samples import MEDIA_TYPE_FILE_SAMPLES

for media_type, sample in MEDIA_TYPE_FILE_SAMPLES.items():
    schemathesis.openapi.media_type(media_type, st.just(sample))


# A rule a schema cannot state: a search's offset + k may not pass the server's --max-k (100 here; k defaults to
# top_k, 12). Such a request is refused with a 400 naming the rule, so the cases drawn as valid keep within it: drawn
# ones are filtered, and in the stateful phase, where an answer's next_offset becomes the next request's offset, the
# offset of a valid case is brought back within it before it is sent.
MAX_K, TOP_K = 100, 12


def _fields(container):
    """The fields of a query or a body (a multipart body comes wrapped with its parts' media types)."""
    return getattr(container, "body", container)


def _sizes(fields) -> tuple[int, int] | None:
    """(offset, k) when both are whole numbers (k absent or an empty form field: the default)."""
    fields = _fields(fields)
    if not isinstance(fields, dict) or "offset" not in fields:
        return None
    offset, k = fields["offset"], fields.get("k")
    k = TOP_K if k in (None, "") else k
    try:  # a form's fields may come as text
        return (
            tuple(int(v) if isinstance(v, str) and v.strip().isdigit() else v for v in (offset, k))
            if all(
                isinstance(v, (int, str)) and not isinstance(v, bool) and str(v).strip().isdigit() for v in (offset, k)
            )
            else None
        )
    except ValueError:
        return None


def _beyond(fields) -> bool:
    sizes = _sizes(fields)
    return sizes is not None and 0 <= sizes[0] < MAX_K and 1 <= sizes[1] <= MAX_K and sum(sizes) > MAX_K


@schemathesis.hook
def filter_query(ctx, query):
    return not _beyond(query)


# A form carries text only: a value of another type drawn for a text field (q=true) reaches the server as the text
# "true", which that field takes; such a case tells nothing about a form, and is not sent.
TEXT_FIELDS = {"q", "mode", "filters", "sort", "facets"}


def _text_in_form(body) -> bool:
    fields = _fields(body)
    if body is fields or not isinstance(fields, dict):  # not a multipart form
        return True
    return all(isinstance(v, str) for name, v in fields.items() if name in TEXT_FIELDS)


@schemathesis.hook
def filter_body(ctx, body):
    return not _beyond(body) and _text_in_form(body)


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    meta = getattr(case, "_meta", None)
    if meta is None or meta.phase.name != "stateful":
        return
    if any(c.mode.name == "NEGATIVE" for c in meta.components.values()):
        return  # a case meant to be refused is left as drawn
    for fields in (_fields(case.query), _fields(case.body)):
        if _beyond(fields):
            fields["offset"] = (
                MAX_K - _sizes(fields)[1] if isinstance(fields["offset"], int) else str(MAX_K - _sizes(fields)[1])
            )
