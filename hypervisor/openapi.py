"""Document the error answers that API.md's general rules give every endpoint.

Views document their own success and domain answers (a 409 on a forbidden transition);
this postprocessing hook adds, where missing, the answers that come from the framework
and the shared rules, so that the schema lists every status a client can receive:
- 400: malformed input, on operations that take a body or query parameters;
- 401: not logged in, on operations that require a session;
- 403: missing CSRF header or a role that does not allow it, on unsafe methods;
- 404: an unknown or foreign object (path parameters) or a page past the end (lists);
- 414: a query string longer than the web server's request line limit (gunicorn's
  `limit_request_line`, 4094 bytes); the web server answers before the API does;
- 429: rate-limited unsafe requests, with `Retry-After`.
"""

from __future__ import annotations

from typing import Any

UNSAFE = {"post", "put", "patch", "delete"}
ERROR = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "description": (
        'Either `{"detail": "message"}` or field errors `{"field": ["message"]}`. A 409 also '
        "carries `code`: the rule that refused (`capacity_below_allocated`, `cluster_busy`, "
        "`invalid_transition`, `last_owner`), or `constraint_violation` when the database's "
        "own constraints refused what the service let through."
    ),
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "additionalProperties": True,
}
DESCRIPTIONS = {
    "400": "Malformed input: field errors, or a detail message.",
    "401": "Not logged in, or the API token is invalid, expired or revoked.",
    "403": "Missing or wrong CSRF header, or your role does not allow this action.",
    "404": "Not found, not in your organizations, or a page past the end.",
    "414": "Request line too long (answered by the web server, not as JSON).",
    "429": "Rate-limited; retry after `Retry-After` seconds.",
}


def add_error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method in UNSAFE | {"get"}:
                _complete(method, operation)
    return result


def _complete(method: str, operation: dict[str, Any]) -> None:
    parameters = operation.get("parameters", [])
    query = [p for p in parameters if p.get("in") == "query"]
    in_path = [p for p in parameters if p.get("in") == "path"]
    anonymous_allowed = {} in operation.get("security", [])
    wanted = set()
    if query or "requestBody" in operation:
        wanted.add("400")
    if query:
        wanted.add("414")
    if not anonymous_allowed:
        wanted.add("401")
    if method in UNSAFE:
        wanted |= {"403", "429"}
    if in_path or any(p["name"] == "page" for p in query):
        wanted.add("404")
    responses = operation.setdefault("responses", {})
    for code in sorted(wanted - responses.keys()):
        responses[code] = {"description": DESCRIPTIONS[code]}
        if code != "414":
            responses[code]["content"] = {"application/json": {"schema": ERROR}}
        if code == "429":
            responses[code]["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}
            }
