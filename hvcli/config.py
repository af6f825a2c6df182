"""Where `hv` keeps the server's address and its API token, and how it finds them.

The file is JSON in the user's config directory (`~/.config/hv/config.json` on Linux,
`HV_CONFIG` to move it), written with mode 0600 in a 0700 directory: it holds a secret.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import typer

DEFAULT_SERVER = "http://127.0.0.1:8000"


@dataclass
class Config:
    server: str = ""
    token: str = ""
    token_id: int | None = None
    username: str = ""


def config_path() -> Path:
    explicit = os.environ.get("HV_CONFIG")
    if explicit:
        return Path(explicit)
    return Path(typer.get_app_dir("hv")) / "config.json"


def load() -> Config:
    """The saved configuration, or an empty one; a damaged file counts as none."""
    try:
        data = json.loads(config_path().read_text())
    except (OSError, ValueError):
        return Config()
    if not isinstance(data, dict):
        return Config()
    known = {key: data[key] for key in Config.__dataclass_fields__ if key in data}
    return Config(**known)


def save(config: Config) -> Path:
    """Write `config` atomically, readable by its owner only."""
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        os.fchmod(file.fileno(), 0o600)  # also when the file was already there
        json.dump(asdict(config), file, indent=2)
    os.replace(temporary, path)
    return path


def forget() -> bool:
    """Delete the saved configuration; False when there was none."""
    try:
        config_path().unlink()
    except FileNotFoundError:
        return False
    return True


def resolve_server(flag: str | None, config: Config) -> str:
    """`--server`, else `HV_SERVER`, else the saved server, else the local default."""
    server = flag or os.environ.get("HV_SERVER") or config.server or DEFAULT_SERVER
    return server.rstrip("/")


def resolve_token(server: str, config: Config) -> str:
    """`HV_TOKEN`, else the saved token, but only for the server it was saved for: a
    token is never sent to another server."""
    return os.environ.get("HV_TOKEN") or (config.token if config.server == server else "")
