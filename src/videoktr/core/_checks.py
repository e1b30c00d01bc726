"""Argument checks shared by the core functions.

Every check raises ``ValueError`` naming the argument and what was wrong, so a user who passes
a ``[B, T, V]`` tensor where ``[B, T]`` belongs learns which one from the message alone. None of
these checks read tensor values: they never force a device synchronisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

SCOPES = ("sequence", "group", "batch")


def check_tensor(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_float(name: str, value: object) -> torch.Tensor:
    tensor = check_tensor(name, value)
    if not tensor.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {tensor.dtype}")
    return tensor


def check_ndim(name: str, tensor: torch.Tensor, ndims: Sequence[int]) -> None:
    if tensor.dim() not in ndims:
        wanted = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{name} must be {wanted}, got shape {tuple(tensor.shape)}")


def check_same_shape(name: str, tensor: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    if tensor.shape != ref.shape:
        raise ValueError(
            f"{name} has shape {tuple(tensor.shape)} but {ref_name} has shape {tuple(ref.shape)};"
            " they must match"
        )


def as_bool_mask(name: str, mask: object, shape: torch.Size | None = None) -> torch.Tensor:
    """A completion mask as a bool tensor; accepts bool, integer 0/1 or float 0/1 tensors."""
    tensor = check_tensor(name, mask)
    if shape is not None and tensor.shape != shape:
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(tensor.shape)}")
    return tensor if tensor.dtype == torch.bool else tensor != 0


def check_group_size(group_size: object, num_rows: int, required: bool) -> int | None:
    if group_size is None:
        if required:
            raise ValueError("group_size is required for scope='group'")
        return None
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")
    if num_rows % group_size != 0:
        raise ValueError(
            f"the batch has {num_rows} rows, which is not divisible by group_size={group_size};"
            " rows g*G .. g*G+G-1 must hold the G completions of prompt g"
        )
    return group_size


def check_scope(scope: object) -> str:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}; got {scope!r}")
    return scope  # type: ignore[return-value]


def check_ratio(name: str, ratio: object) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        raise ValueError(f"{name} must be a number in [0, 1], got {ratio!r}")
    ratio = float(ratio)
    if not 0.0 <= ratio <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must lie in [0, 1], got {ratio!r}")
    return ratio


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """At least float32: half-precision inputs are upcast so sums and exps stay accurate."""
    return torch.promote_types(dtype, torch.float32)
