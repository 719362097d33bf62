"""The one HTTP client layer of the API sources (workers/sources): tokens, retries, limits, logs.

    FetchError (TerminalError) ... the fetch is cut off: the run fails with this one sentence

Everything else a request meets is decided in ``client.py``: what is retried, what refreshes the
token, what fails at once.
"""

from workers.http.client import ApiClient
from workers.http.errors import FetchError
from workers.http.tokens import Token, TokenSource

__all__ = ["ApiClient", "FetchError", "Token", "TokenSource"]
