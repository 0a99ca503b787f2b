"""How large a request body each route accepts, enforced while the body is read.

FastAPI's `max_body_size` (Starlette's RequestBodyLimitMiddleware) refuses a declared
`Content-Length` over the limit before the body is read, and counts the bytes of a body
without one (chunked) as they arrive, stopping at the first chunk over it; the app answers
413 `body_too_large` (gateway/core/errors.py). Without a bound, a 50 MB body cost 100 MB of
memory (FastAPI's buffer, then pydantic's copy) before its 422. `DEFAULT_BODY_LIMIT` is the
app's; the routes below that carry frames or documents name a larger one.
"""

from __future__ import annotations

from gateway.api.models.image_budget import MAX_FRAME_CHARS, MAX_FRAMES

# Every JSON body without images or documents fits in far less.
DEFAULT_BODY_LIMIT = 1024 * 1024
# MAX_FRAMES frames of base64 plus the JSON around them (ids, keys, a password).
FRAMES_BODY_LIMIT = MAX_FRAMES * MAX_FRAME_CHARS + 64 * 1024
ONE_FRAME_BODY_LIMIT = MAX_FRAME_CHARS + 16 * 1024
# A credential's content: a transcript lists up to 500 courses of up to 4096 characters; a
# check's content is up to 1,000,000 characters, each possibly escaped in the JSON string.
DOCUMENT_BODY_LIMIT = 4 * 1024 * 1024
# A profile record's `data`: up to 1,400,000 base64 characters.
PROFILE_BODY_LIMIT = 2 * 1024 * 1024
# Up to 10,000 de-identified dataset rows.
DATASET_BODY_LIMIT = 16 * 1024 * 1024
