"""OpenAI-compatible endpoints, for the judge and the reviser alike: the client and a reachability check.

Retries (exponential backoff honouring ``Retry-After``) are the openai client's own.
"""

from __future__ import annotations

from typing import Any

from .errors import CnRError


class EndpointError(CnRError):
    """An endpoint that does not answer, or rejects the key, before any work was done."""


def api_key_from_env(name: str | None) -> str:
    """The API key in environment variable ``name`` (``no-key`` where none is asked for); never printed."""
    import os

    if not name:
        return "no-key"
    key = os.environ.get(name, "")
    if not key:
        raise EndpointError(f"${name} is not set (it should hold the server's API key)")
    return key


def openai_module(command: str = "this command") -> Any:
    try:
        import openai
    except ImportError:
        raise CnRError(f'{command} needs the openai client: pip install "cnr-plugin[eval]"') from None
    return openai


#: HTTP statuses the openai client retries (besides connection errors and timeouts), as its ``_should_retry``
RETRIED_STATUSES = frozenset({408, 409, 429})


def describe_failure(exc: Any, max_retries: int) -> str:
    """How a request failed for good, without claiming retries that were not made: the client
    retries 408, 409, 429, 5xx and connection errors, and gives up at once on other statuses."""
    status = getattr(exc, "status_code", None)
    if status is not None and status not in RETRIED_STATUSES and status < 500:
        return f"HTTP {status}, not retried"
    return f"{f'HTTP {status}' if status else type(exc).__name__} after {max_retries} retries"


def make_client(base_url: str, api_key: str, *, timeout_s: float, max_retries: int, command: str) -> Any:
    return openai_module(command).OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s,
                                         max_retries=max_retries)


def check_reachable(client: Any, base_url: str, role: str, timeout_s: float = 10.0) -> None:
    """Fail fast, in one line, when ``base_url`` does not answer (no retries, a short timeout)."""
    import openai

    quick = client.with_options(max_retries=0, timeout=min(timeout_s, 10.0))
    try:
        quick.models.list()
    except openai.APIConnectionError as exc:  # includes timeouts
        raise EndpointError(f"{role} endpoint {base_url} is unreachable: {type(exc).__name__}") from None
    except openai.AuthenticationError:
        raise EndpointError(f"{role} endpoint {base_url} rejected the API key (HTTP 401)") from None
    except openai.APIStatusError:
        pass  # it answers; some servers have no /models
