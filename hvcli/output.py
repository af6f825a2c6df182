"""What `hv` prints: tables for people, JSON for scripts (`--json`), errors on stderr."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

stdout = Console(highlight=False, soft_wrap=False)
stderr = Console(stderr=True, highlight=False)


def emit_json(data: Any) -> None:
    # Plain print, not rich: scripts get exactly the JSON, never wrapped or styled.
    print(json.dumps(data, indent=2, ensure_ascii=False))


def resources(value: dict | None) -> str:
    if not value:
        return ""
    return f"{value['cpu']} CPU · {value['ram_mb']} MiB · {value['gpu']} GPU"


def cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict) and {"cpu", "ram_mb", "gpu"} <= set(value):
        return resources(value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def table(rows: Iterable[dict], columns: Sequence[tuple[str, str]], *, empty: str) -> None:
    """`columns`: (key in each row, heading). Nothing is cut: long values wrap."""
    rows = list(rows)
    if not rows:
        stdout.print(empty)
        return
    grid = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for _key, heading in columns:
        grid.add_column(heading, overflow="fold")
    for row in rows:
        grid.add_row(*(cell(row.get(key)) for key, _heading in columns))
    stdout.print(grid)


def fields(record: dict, order: Sequence[str]) -> None:
    """One record as `name  value` lines, in `order`, then any other field."""
    grid = Table(show_header=False, box=None, pad_edge=False)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    keys = [key for key in order if key in record]
    keys += [key for key in record if key not in keys]
    for key in keys:
        grid.add_row(key, cell(record[key]))
    stdout.print(grid)
