"""Avalanche plugins that act between and around experiences, one per file."""

from dpf_continual.strategies.plugins.checkpoint import RegistryCheckpointPlugin
from dpf_continual.strategies.plugins.ewc import PromptEWCPlugin
from dpf_continual.strategies.plugins.lwf import PromptLwFPlugin
from dpf_continual.strategies.plugins.pool_growth import PoolGrowthPlugin
from dpf_continual.strategies.plugins.replay import PromptReplayPlugin
from dpf_continual.strategies.plugins.scores import ScoreCollectorPlugin

__all__ = [
    "PoolGrowthPlugin",
    "PromptEWCPlugin",
    "PromptLwFPlugin",
    "PromptReplayPlugin",
    "RegistryCheckpointPlugin",
    "ScoreCollectorPlugin",
]
