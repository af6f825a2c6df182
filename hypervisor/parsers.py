"""JSON parsing: numbers as exact values, and 400, never 500, for any body.

Numbers with a fraction or an exponent are read as `Decimal`, not `float`: `1e-999999999`
stays a value with too many decimals (a 400) instead of becoming 0.0, and `0.1` is
exactly 0.1. `NaN` and `Infinity` are refused (DRF's strict mode). A body nested beyond
Python's recursion is a 400.
"""

import codecs
import json
from decimal import Decimal

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            decoded = codecs.getreader(encoding)(stream)
            return json.load(decoded, parse_float=Decimal, parse_constant=strict_constant)
        except RecursionError as error:
            raise ParseError("JSON parse error - nested too deeply.") from error
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from error
