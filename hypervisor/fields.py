"""Strict input fields: DRF's, without its silent coercions (API.md: "A JSON number where a
string is expected is 400, here and everywhere").

- `CharField` takes strings only: DRF's turns `7` into `"7"` (an image, a name).
- `IntegerField` and `DecimalField` take JSON numbers and ASCII numeric strings only:
  DRF's read "\u0661" (ARABIC-INDIC DIGIT ONE) as 1, as Python's `int` and `Decimal` do.
  JSON numbers arrive as `int` or `Decimal` (`hypervisor.parsers`), never as floats, so
  `1e-999999999` is a value with too many decimals, not 0.
- `NameField`: a `CharField` without control, format (bidi overrides such as U+202E),
  surrogate, private-use, unassigned or line/paragraph-separator characters, which spoof
  what pages and logs show.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from rest_framework import serializers

# Control, format (bidi controls), surrogate, private use, unassigned, line/paragraph sep.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def validate_display_text(value: str) -> None:
    """Refuse text that would not show as what it is: control or formatting characters."""
    for character in value:
        if unicodedata.category(character) in _FORBIDDEN_CATEGORIES:
            raise ValidationError(
                f"Must not contain control or formatting characters (found U+{ord(character):04X})."
            )


class CharField(serializers.CharField):
    def to_internal_value(self, data) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class NameField(CharField):
    def __init__(self, **kwargs) -> None:
        kwargs["validators"] = [*kwargs.get("validators", []), validate_display_text]
        super().__init__(**kwargs)


def _ascii_or_fail(field: serializers.Field, data) -> None:
    if isinstance(data, str) and not data.isascii():
        field.fail("invalid")


class IntegerField(serializers.IntegerField):
    def to_internal_value(self, data) -> int:
        _ascii_or_fail(self, data)
        return super().to_internal_value(data)


class DecimalField(serializers.DecimalField):
    def to_internal_value(self, data):
        _ascii_or_fail(self, data)
        return super().to_internal_value(data)
