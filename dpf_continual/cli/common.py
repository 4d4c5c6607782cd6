"""Helpers shared by the CLI modules: the registry option, error handling and output."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from dpf_continual.errors import DPFError

DEFAULT_REGISTRY_URL = "sqlite:///./dpf-registry/registry.db"

console = Console()
err_console = Console(stderr=True)


def registry_url_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--registry URL`` (falling back to ``DPF_REGISTRY``, then the default SQLite file)."""
    return click.option(
        "--registry",
        "registry_url",
        default=lambda: os.environ.get("DPF_REGISTRY", DEFAULT_REGISTRY_URL),
        show_default="$DPF_REGISTRY or sqlite:///./dpf-registry/registry.db",
        help="SQLAlchemy URL of the registry.",
    )(func)


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--json`` for machine-readable output."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(
        func
    )


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a :class:`DPFError` into one line on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DPFError as error:
            raise click.ClickException(str(error)) from None

    return wrapper


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON to stdout."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")
