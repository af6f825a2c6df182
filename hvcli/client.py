"""HTTP to the hypervisor API, and what each kind of failure means for the exit code."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx

# Exit codes scripts can rely on (README, "The hv command line").
OK = 0
API_ERROR = 1  # the API refused the request (4xx other than 401)
USAGE = 2  # bad command-line usage (typer's own code for it)
AUTH = 3  # not signed in, or the token is invalid, expired or revoked (401)
SERVER = 4  # the server failed (5xx) or could not be reached

API_PREFIX = "/api/v1"


class CliError(Exception):
    """A failure to report on stderr, exiting with the code it stands for."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def _describe(body: Any) -> str:
    """An API error body (`{"detail": ...}` or `{"field": ["message"]}`) in one line."""
    if isinstance(body, dict):
        if set(body) == {"detail"}:
            return str(body["detail"])
        parts = []
        for field, messages in body.items():
            text = "; ".join(map(str, messages)) if isinstance(messages, list) else str(messages)
            parts.append(f"{field}: {text}")
        return ", ".join(parts)
    return str(body)


def raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text.strip()[:200] or response.reason_phrase
    message = f"{response.status_code} {response.reason_phrase}: {_describe(body)}"
    if response.status_code == 401:
        raise CliError(f"{message} (sign in with `hv login`)", AUTH)
    if response.status_code >= 500:
        raise CliError(message, SERVER)
    raise CliError(message, API_ERROR)


class Api:
    """A session with one server; `token` goes in `Authorization: Bearer`."""

    def __init__(self, server: str, token: str = "") -> None:
        headers = {"Accept": "application/json", "User-Agent": "hv"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        timeout = float(os.environ.get("HV_TIMEOUT", "30"))
        self.server = server
        self.http = httpx.Client(base_url=server, headers=headers, timeout=timeout)

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = path if path.startswith("http") else API_PREFIX + path
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.TimeoutException as error:
            raise CliError(f"{self.server} did not answer in time: {error}", SERVER) from None
        except httpx.HTTPError as error:
            raise CliError(f"cannot reach {self.server}: {error}", SERVER) from None
        raise_for(response)
        return response

    def get(self, path: str, params: dict | None = None) -> Any:
        return self.request("GET", path, params=params).json()

    def post(self, path: str, body: Any = None, headers: dict | None = None) -> Any:
        response = self.request("POST", path, json=body, headers=headers)
        return response.json() if response.content else None

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def pages(self, path: str, params: dict | None = None, *, every: bool = True) -> Iterator:
        """The items of a list, following `next` while `every` (one page otherwise)."""
        answer = self.get(path, params)
        while True:
            if not isinstance(answer, dict) or "results" not in answer:
                yield from answer  # an unpaginated list
                return
            yield from answer["results"]
            if not (every and answer.get("next")):
                return
            answer = self.get(answer["next"])
