"""Continual training on Avalanche: the DPF strategy, its plugins, baselines and the runner.

Importing this package imports Avalanche (several seconds); the CLI does it only in the
training commands.
"""

from dpf_continual.strategies.config import TrainConfig

__all__ = ["TrainConfig"]
