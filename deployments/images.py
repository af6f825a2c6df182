"""Docker/OCI image references, validated against the grammar of distribution/reference.

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path-component [ "/" path-component ]*
    domain     := host [ ":" port ]          host := domain-name | "[" IPv6 "]"
    path-component := [a-z0-9]+ ( ( [_.] | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [\\w][\\w.-]{0,127}
    digest     := algorithm ":" hex{32,}     (sha256: 64 hex, sha512: 128 hex)

The name is at most 255 characters. `re.ASCII` and `fullmatch` keep out Unicode
digits and a trailing newline, which a naive `\\w`/`$` pattern would let through.
"""

import re

from django.core.exceptions import ValidationError

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[_.]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_HOST = rf"(?:{_DOMAIN_NAME}|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?", re.ASCII
)
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
MAX_NAME_LENGTH = 255
MAX_REFERENCE_LENGTH = 512


def validate_image_reference(value: str) -> None:
    """Raise `ValidationError` unless `value` is a valid Docker/OCI image reference."""
    if len(value) > MAX_REFERENCE_LENGTH:
        raise ValidationError(f"Image reference is longer than {MAX_REFERENCE_LENGTH} characters.")
    match = _REFERENCE.fullmatch(value)
    if match is None:
        raise ValidationError(
            "Not a Docker/OCI image reference; expected e.g. "
            "'registry.example.com:5000/team/trainer:1.4' or 'python@sha256:<64 hex>'."
        )
    if len(match["name"]) > MAX_NAME_LENGTH:
        raise ValidationError(f"Image name is longer than {MAX_NAME_LENGTH} characters.")
    if match["digest"]:
        algorithm, hex_digits = match["digest"].split(":", 1)
        expected = _DIGEST_HEX_LENGTH.get(algorithm)
        if expected is not None and len(hex_digits) != expected:
            raise ValidationError(f"A {algorithm} digest has exactly {expected} hex digits.")
