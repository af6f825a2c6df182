"""`<id:...>` in page paths: an id the database can hold, else no match (404).

`<int:...>` matches any digits; 9223372036854775808 then reached SQLite as an integer
it cannot bind (OverflowError, a 500), where PostgreSQL found nothing. Ids of at most
18 digits are always below 2**63, as the API's routes (`lookup_value_regex`) require.
"""


class IdConverter:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)
