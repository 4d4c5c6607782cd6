"""Exceptions raised for user mistakes.

Every class here means "the input was wrong, not the code". The CLI turns each into one line on
stderr and a non-zero exit; library users can catch :class:`DPFError` to handle them all.
"""


class DPFError(Exception):
    """Base class of every user-facing error in dpf-continual."""


class ConfigError(DPFError, ValueError):
    """A setting has a value outside what is allowed."""


class DataFormatError(DPFError):
    """A data file cannot be read as a task (names the file and, where known, the line)."""


class TaskSourceNotFoundError(DPFError):
    """A task name could not be resolved to data anywhere we looked."""


class RegistryError(DPFError):
    """The registry cannot be opened or written."""


class TaskNotFoundError(RegistryError, KeyError):
    """No registered task has the given name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class VersionNotFoundError(RegistryError, KeyError):
    """No pool version or task prompt exists for the given version."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DuplicateTaskError(RegistryError):
    """A task with this name is already registered with different data."""


class IntegrityError(RegistryError):
    """A stored tensor does not match its recorded SHA-256 digest."""


class SchemaVersionError(RegistryError):
    """The registry was written by a newer dpf-continual than the one running."""


class BackboneMismatchError(RegistryError):
    """A backbone or tensor does not fit the registry's backbone (width, identity)."""


class TrainingError(DPFError):
    """Training of a task stopped (a NaN or infinite loss, for example)."""
