"""What callers send, checked once where it comes in: text cleaned of control characters, and pydantic's refusals
worded for the person who sent the request.

Every way in (REST, the Gradio UI and API, the agent tools, the CLI) reads its inputs through pydantic types built
here, so a rule is written once and holds everywhere:

- Control characters (Unicode category Cc, NUL among them) and lone surrogates are not text a person typed: they are
  dropped, and tabs and line breaks become spaces. PostgreSQL refuses NUL in text outright, and tables show the
  rest as boxes. Text that was nothing but such characters is empty afterwards, and refused where text is needed.
- A length limit holds for the text as sent, before cleaning, as the API's schema says.
- A refusal of a value (out of range, blank, too long, unknown) is worded as a sentence and answered 400; a request
  whose shape is wrong (a field missing, a word where a number belongs) keeps pydantic's words and is answered 422.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated

import annotated_types as at
from pydantic import AllowInfNan, BeforeValidator, StringConstraints
from pydantic_core import PydanticCustomError

_SPACES = re.compile(r"[\t\n\v\f\r\x1c-\x1f\x85\u2028\u2029]+")
_DROPPED = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ufeff\ud800-\udfff]")
# Written into the API's schema: at least one character that is neither white space nor a control character.
VISIBLE = r"[^\s\x00-\x1f\x7f-\x9f]"
# Words a search can look for: at least one that is not pushed away with '-' ("sneaker -white"; a lone '-' is a word),
# read as the search reads them: control characters dropped, and what separates words as Python's split() has it.
_SEP, _CTRL = r"[\s\x1c-\x1f\x85]", r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ufeff]"
WORDS = rf"(?:^|{_SEP}){_CTRL}*(?:[^\s\x00-\x1f\x7f-\x9f\ufeff-]|-{_CTRL}*(?:{_SEP}|$))"
REFUSED = "refused"  # the error type of a refusal whose message is already a sentence for people
# Each field of the API named for people ("keyword_weight": "keyword weight"); a field named as it is sent (k) starts
# its sentence as it is.
LABELS = {
    "q": "query",
    "k": "k",
    "mode": "search mode",
    "min_score": "minimum score",
    "keyword_weight": "keyword weight",
    "image_weight": "image weight",
    "item_id": "item id",
    "query_id": "query_id",
    "client_id": "client_id",
}
# What a field sent blank is told.
BLANK = {"q": "Type something to search for, e.g. 'red striped t-shirt'."}
# What a field that does not match its pattern for another reason is told (the query: only words pushed away).
UNMATCHED = {
    "q": "Say what you want as well as what you don't, e.g. 'sneaker -white'.",
    "action": "action must be a name of 1 to 64 letters, digits, '_', '-' or '.' (such as click, view or add_to_cart).",
    "query_id": "query_id must be the query_id of an answer from this server (32 hexadecimal digits).",
}
RANGES: dict[str, str] = {}  # a bounded field's bounds in words, by name (``bounded``)


class InputError(ValueError):
    """An input refused with a message for people; ``status`` is 400 for a refused value, 422 for a wrong shape."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def clean(text: str) -> str:
    """``text`` without control characters: line breaks and tabs become spaces, the others are dropped (and so is the
    byte-order mark, which Python does not count as a space but JSON Schema's patterns do)."""
    return _DROPPED.sub("", _SPACES.sub(" ", text))


def refuse(message: str) -> PydanticCustomError:
    """A refusal raised inside a validator: its message reaches the caller as it is, with a 400."""
    return PydanticCustomError(REFUSED, message)


def _cleaner(max_length: int | None):
    def cleaned(value: object) -> object:
        if not isinstance(value, str):
            return value  # pydantic's own type check words the refusal
        if max_length is not None and len(value) > max_length:
            raise PydanticCustomError(
                "string_too_long", "at most {max_length} characters", {"max_length": max_length, "length": len(value)}
            )
        return clean(value).strip()

    return cleaned


def name(allowed: str, max_length: int):
    """A name made of the ``allowed`` characters (a character class's inside), 1 to ``max_length`` of them once
    control characters are dropped: the pattern the schema shows lets those through, as the cleaning does."""
    pattern = rf"^{_CTRL}*(?:[{allowed}]{_CTRL}*){{1,{max_length}}}$"
    return Annotated[str, StringConstraints(pattern=pattern), BeforeValidator(_cleaner(None))]


def text(max_length: int | None = None, required: bool = False, pattern: str | None = None):
    """A text type: cleaned and stripped, at most ``max_length`` characters as sent, and with ``required`` not
    blank (or matching ``pattern``). The constraints stand before the cleaning so that the schema shows them
    (pydantic runs the cleaning first)."""
    constraints = StringConstraints(max_length=max_length, pattern=pattern or (VISIBLE if required else None))
    return Annotated[str, constraints, BeforeValidator(_cleaner(max_length))]


def bounded(kind: type, names: tuple[str, ...], low=None, high=None, above: bool = False):
    """A finite number type from ``low`` to ``high`` (None: unbounded; ``above``: ``low`` itself excluded) for the
    fields ``names``, whose refusal names both bounds whichever is crossed."""
    words = [f"more than {low:g}" if above else f"at least {low:g}"] if low is not None else []
    words += [f"at most {high:g}"] if high is not None else []
    if low is not None and high is not None and not above:
        words = [f"between {low:g} and {high:g}"]
    RANGES.update(dict.fromkeys(names, " and ".join(words) or "a number"))
    interval = at.Interval(gt=low, le=high) if above else at.Interval(ge=low, le=high)
    return Annotated[kind, interval, *([AllowInfNan(False)] if kind is float else [])]


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def explain(errors: Iterable[dict]) -> InputError:
    """pydantic's errors (of a request's fields, or of a model's) as one refusal, worded with LABELS and BLANK."""
    values, shapes = [], []
    for err in errors:
        loc = [str(x) for x in err.get("loc", ()) if x not in ("query", "body", "path", "form")]
        field = loc[-1] if loc else "request"
        label, kind, given, ctx = LABELS.get(field, field), err.get("type", ""), err.get("input"), err.get("ctx", {})
        if kind == REFUSED:
            values.append(err["msg"])
        elif kind == "string_pattern_mismatch":
            if not (isinstance(given, str) and clean(given).strip()):
                values.append(BLANK.get(field) or f"The {label} must not be blank.")
            else:
                values.append(UNMATCHED.get(field) or f"The {label} {_shown(given)} is not of the form it takes.")
        elif kind == "string_too_long":
            length = ctx.get("length", len(given) if isinstance(given, str) else "?")
            limit = ctx.get("max_length")
            values.append(
                f"The {label} is {length:,} characters long; the limit is {limit}."
                if isinstance(length, int)
                else f"The {label} is longer than {limit} characters."
            )
        elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than", "finite_number"):
            bounds = RANGES.get(field) or " and ".join(f"{k} {v}" for k, v in ctx.items()) or "a number"
            subject = label if label == field else f"The {label}"  # a field named as it is sent: "k must be ..."
            values.append(f"{subject} must be {bounds}, not {_shown(given)}.")
        elif kind == "literal_error":
            values.append(
                f"Unknown {label} {_shown(given)}; use one of {ctx.get('expected', '').replace(chr(39), '')}."
            )
        else:
            shapes.append(f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}")
    if values:
        return InputError(" ".join(dict.fromkeys(values)))
    return InputError("Invalid request: " + "; ".join(shapes[:5]), status=422)
