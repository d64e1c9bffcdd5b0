"""Array conversions for caller input, with ConfigValidationError instead of raw NumPy errors."""

from __future__ import annotations

from typing import Any

import numpy as np

from shardvec.errors import ConfigValidationError


def float32_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a C-contiguous float32 array (read in place when it already is one)."""
    try:
        return np.ascontiguousarray(value, dtype=np.float32)
    except (TypeError, ValueError, OverflowError) as error:
        raise ConfigValidationError(f"{name} must be numbers convertible to float32: {error}") from None


def int64_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a C-contiguous int64 array; integers outside int64 are refused by name."""
    try:
        return np.ascontiguousarray(value, dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as error:
        raise ConfigValidationError(f"{name} must be integers in the int64 range: {error}") from None
