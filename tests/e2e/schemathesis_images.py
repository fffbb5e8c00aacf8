"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) in test_contract.py: what a picture is, for the image route's upload.

The route's schema declares the upload's media types (image/jpeg, image/png, ...), which JSON Schema cannot check
by content; schemathesis draws random bytes for them unless told what a file of each type looks like. These are its
own smallest well-formed files of each type, so a positive test sends a picture the server can decode, and a
negative one still sends what it likes."""

import schemathesis
from hypothesis import strategies as st
from schemathesis.core.file_samples import MEDIA_TYPE_FILE_SAMPLES

for media_type, sample in MEDIA_TYPE_FILE_SAMPLES.items():
    schemathesis.openapi.media_type(media_type, st.just(sample))
