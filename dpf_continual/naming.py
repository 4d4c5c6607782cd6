"""Task names: slugs that are safe as file names and database keys."""

from __future__ import annotations

import difflib
import re

from dpf_continual.errors import ConfigError

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,127}$")


def validate_task_name(name: str) -> str:
    """Return ``name`` if it is a valid task slug, else raise :class:`ConfigError`.

    A slug is 1-128 characters of lower-case letters, digits, ``_``, ``-`` and ``.``, starting with
    a letter or digit, and never containing ``..`` (so it can never climb out of a folder).
    """
    if not isinstance(name, str) or not _SLUG.match(name) or ".." in name:
        raise ConfigError(
            f"task name {name!r} is not a slug: expected 1-128 characters of a-z, 0-9, '_', '-',"
            " '.' starting with a letter or digit, and no '..'"
        )
    return name


def close_matches(name: str, candidates: list[str], limit: int = 3) -> str:
    """A ``" (did you mean: a, b?)"`` suffix for error messages, or ``""`` when nothing is close."""
    matches = difflib.get_close_matches(name, candidates, n=limit, cutoff=0.6)
    return f" (did you mean: {', '.join(matches)}?)" if matches else ""
