"""The checks every vidtempo config's `validate_*` methods share (`@strict` dataclass configs).

Self-contained (standard library only): a checkpoint of any vidtempo model may carry this file.
"""

from collections.abc import Iterable


def check_positive_int(config: object, *names: str, allow_zero: bool = False) -> None:
    """Raise ValueError unless every `config.<name>` is an int (not a bool) > 0 (>= 0 with `allow_zero`)."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if allow_zero else 1):
            expected = "a non-negative integer" if allow_zero else "a positive integer"
            raise ValueError(f"{type(config).__name__}.{name} must be {expected}, got {value!r}")


_FIELD = object()


def check_choice(config: object, name: str, choices: Iterable, value: object = _FIELD) -> None:
    """Raise ValueError unless `config.<name>` (or `value`, described as `name`) is one of `choices`."""
    choices = list(choices)
    value = getattr(config, name) if value is _FIELD else value
    if value not in choices:
        raise ValueError(f"{type(config).__name__}.{name} must be one of {choices}, got {value!r}")


__all__ = ["check_choice", "check_positive_int"]
