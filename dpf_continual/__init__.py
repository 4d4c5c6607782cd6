"""Dynamic Prompt Fusion: teach one frozen language model a growing stream of tasks.

The package is split by job (see README): ``fusion`` holds the prompt pool, scheduler and gate;
``backbones`` wraps frozen Hugging Face models; ``data`` reads tasks; ``registry`` keeps every
task, pool version and prompt; ``strategies`` trains a stream of tasks with Avalanche.
"""

__version__ = "0.1.0"
