"""``"package.module:attribute"`` specs: naming a user's callable on a command line or in YAML.

Shared by :func:`videoktr.rewards.load_reward_function` (reward functions) and
:func:`videoktr.eval.judge.load_judge` (evaluation judges). The module is imported with
:func:`importlib.import_module` and the attribute path is followed one ``getattr`` at a time;
the spec is never evaluated. Every failure is one ``ValueError`` whose message starts with
``"<kind> '<spec>'"``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["is_callable_spec", "load_callable_spec"]


def _parts(spec: str) -> tuple[str, str, str]:
    module_name, colon, attribute_path = (part.strip() for part in spec.partition(":"))
    return module_name, colon, attribute_path


def is_callable_spec(spec: object) -> bool:
    """Whether ``spec`` has the form ``"module:attribute"`` (both parts non-empty)."""
    if not isinstance(spec, str):
        return False
    module_name, colon, attribute_path = _parts(spec)
    return bool(colon and module_name and attribute_path)


def load_callable_spec(spec: str, kind: str) -> Callable[..., Any]:
    """The callable ``spec`` names.

    ::

        "pkg.module:name"       -> importlib.import_module("pkg.module").name
        "pkg.module:Cls.method" -> dotted attributes are followed one by one

    Raises:
        ValueError: ``"<kind> '<spec>': ..."`` when the spec is not ``module:attribute``, the
            module cannot be imported (missing, or raising while imported), an attribute is
            missing, or the result is not callable.
    """
    if not is_callable_spec(spec):
        raise ValueError(f"{kind} {spec!r} is not of the form 'module:function'")
    module_name, _, attribute_path = _parts(spec)
    try:
        target: object = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name or module_name.startswith(f"{exc.name}."):
            raise ValueError(f"{kind} {spec!r}: no module named {module_name!r}") from exc
        raise ValueError(f"{kind} {spec!r}: importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise ValueError(
            f"{kind} {spec!r}: importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    for depth, attribute in enumerate(attribute_path.split(".")):
        try:
            target = getattr(target, attribute)
        except AttributeError as exc:
            owner = ".".join([module_name, *attribute_path.split(".")[:depth]])
            raise ValueError(f"{kind} {spec!r}: {owner!r} has no attribute {attribute!r}") from exc
    if not callable(target):
        raise ValueError(  # noqa: TRY004 - every bad spec is one ValueError
            f"{kind} {spec!r} is not callable: it is a {type(target).__name__}"
        )
    return target
