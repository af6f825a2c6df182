"""A deployment to submit, from a YAML/JSON file and flags (flags win)."""

from __future__ import annotations

import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import typer
import yaml

CONDITIONS = ("succeeded", "finished", "failed")
REQUIRED = ("cluster", "name", "image")


def read_spec(path: Path) -> dict:
    """The file's object: JSON for `.json`, else YAML (which JSON also is); `-` is stdin."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as error:
        raise typer.BadParameter(
            f"cannot read {path}: {error.strerror}", param_hint="--file"
        ) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise typer.BadParameter(f"{path} is not valid: {error}", param_hint="--file") from None
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path} must hold one object (a mapping)", param_hint="--file")
    return data


def parse_cpu(text: str) -> float | int:
    """Cores, with at most 3 decimals, sent as a JSON number."""
    try:
        cores = Decimal(text)
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not a number of cores", param_hint="--cpu") from None
    if not cores.is_finite() or cores < 0 or cores != cores.quantize(Decimal("0.001")):
        raise typer.BadParameter("a number >= 0 with at most 3 decimals", param_hint="--cpu")
    return int(cores) if cores == cores.to_integral_value() else float(cores)


def parse_dependency(text: str) -> dict:
    """`12` or `12:finished` -> `{"deployment": 12, "condition": ...}`."""
    ident, _, condition = text.partition(":")
    if not ident.isdigit() or (condition and condition not in CONDITIONS):
        raise typer.BadParameter(
            f"{text!r}: expected ID or ID:CONDITION with CONDITION one of {', '.join(CONDITIONS)}",
            param_hint="--depends-on",
        )
    return {"deployment": int(ident), "condition": condition or "succeeded"}


def parse_env(text: str) -> tuple[str, str]:
    """`NAME=VALUE` -> `("NAME", "VALUE")`; the value may contain `=` or be empty."""
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise typer.BadParameter(f"{text!r}: expected NAME=VALUE", param_hint="--env")
    return name, value


def spec_from_flags(base: dict, flags: dict[str, Any]) -> dict:
    """`base` (the file's object) with every flag that was given laid over it."""
    spec = dict(base)
    resources = dict(spec.get("resources") or {})
    for key in ("cpu", "ram_mb", "gpu"):
        if flags.get(key) is not None:
            resources[key] = flags[key]
    resources.setdefault("gpu", 0)
    spec["resources"] = resources
    for key in ("cluster", "name", "image", "priority", "preemptible"):
        if flags.get(key) is not None:
            spec[key] = flags[key]
    if flags.get("depends_on"):
        spec["depends_on"] = [parse_dependency(item) for item in flags["depends_on"]]
    if flags.get("command"):
        spec["command"] = list(flags["command"])
    if flags.get("env"):
        spec["env"] = {**(spec.get("env") or {}), **dict(map(parse_env, flags["env"]))}
    missing = [f"--{key}" for key in REQUIRED if key not in spec]
    missing += [f"--{key.replace('_', '-')}" for key in ("cpu", "ram_mb") if key not in resources]
    if missing:
        raise typer.BadParameter(f"missing {', '.join(missing)} (or the same in --file)")
    return spec
