"""The ``dpf-cl`` command: a thin click layer over the library.

Each group of commands lives in its own module and registers itself on :data:`main`. Modules here
import only click, rich and the registry at import time: heavy libraries (torch's model code,
transformers, avalanche) are imported inside the commands that need them, so query commands start
fast.
"""

from __future__ import annotations

import os

import click

# Idle OpenMP threads sleep instead of spinning: on a small shared machine, spinning threads of
# one step steal the cores the others need (a MiniLM step took half the time with this).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from dpf_continual import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dpf-cl")
def main() -> None:
    """Dynamic Prompt Fusion: teach one frozen language model a growing stream of tasks.

    \b
    Typical flow:
      dpf-cl add-task --name ag_news --data ./ag_news/
      dpf-cl train-stream
      dpf-cl prompt --task ag_news --out ag_news.safetensors
    """


def _register_commands() -> None:
    # Imported for their side effect of adding commands to `main`.
    from dpf_continual.cli import (  # noqa: F401
        predict_commands,
        registry_commands,
        task_commands,
        train_commands,
    )


_register_commands()
