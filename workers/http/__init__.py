"""The one HTTP client layer of the API sources (workers/sources): tokens, retries, limits, logs.

    FetchError (TerminalError) ... the fetch is cut off: the run fails with this one sentence

Everything else a request meets is decided in ``client.py``: what is retried, what refreshes the
token, what fails at once; Workday's SOAP and RaaS requests (no token: a UsernameToken or Basic
auth) in ``soap.py``, with the same timeouts, retries and TLS rules (``retry.Limits``).
"""

from workers.http.client import ApiClient
from workers.http.errors import FetchError
from workers.http.tokens import Token, TokenSource

__all__ = ["ApiClient", "FetchError", "Token", "TokenSource"]
