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
    if isinstance(value, np.ndarray) and value.dtype.kind == "u" and value.size and value.max() > np.iinfo(np.int64).max:
        raise ConfigValidationError(f"{name} must be integers in the int64 range: {value.max()} is above it")
    try:
        return np.ascontiguousarray(value, dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as error:
        raise ConfigValidationError(f"{name} must be integers in the int64 range: {error}") from None


def _module_of(value: Any) -> str:
    return type(value).__module__.split(".", 1)[0]


def _arrow_list_matrix(array: Any, name: str) -> np.ndarray:
    """A pyarrow (Chunked)Array of FixedSizeList or List of numbers as an (n, dim) array: the list
    values are read in place when they are one chunk of floats without nulls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    kind = array.type
    if not (pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        raise ConfigValidationError(f"{name} as a pyarrow array must be a FixedSizeList or List of floats, got {kind}")
    if array.null_count:
        row = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
        raise ConfigValidationError(f"{name} row {row} is null")
    rows = len(array)
    if pa.types.is_fixed_size_list(kind):
        dim = kind.list_size
    else:
        lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
        dim = int(lengths[0]) if rows else 0
        ragged = np.flatnonzero(lengths != dim)
        if ragged.size:
            row = int(ragged[0])
            raise ConfigValidationError(f"{name} row {row} has {lengths[row]} values, expected {dim} (ragged rows)")
    values = array.flatten()
    if values.null_count:
        raise ConfigValidationError(f"{name} holds null values inside its vectors")
    return values.to_numpy(zero_copy_only=False).reshape(rows, dim)


def vectors_matrix(value: Any, name: str) -> np.ndarray:
    """``value`` as a C-contiguous float32 (n, dim) array: a 2-D NumPy array (read in place when it
    is float32; float16 and float64 convert), a pandas DataFrame, a pandas Series of arrays (or of
    Arrow lists), a pyarrow FixedSizeList/List (Chunked)Array, or a sequence of vectors."""
    module = _module_of(value)
    if module == "pyarrow":
        value = _arrow_list_matrix(value, name)
    elif module == "pandas":
        import pandas as pd

        if isinstance(value, pd.Series) and isinstance(value.dtype, pd.ArrowDtype):
            import pyarrow as pa

            value = _arrow_list_matrix(pa.array(value.array), name)  # its Arrow data, no copy
        elif isinstance(value, pd.Series):
            value = value.to_numpy()
        elif isinstance(value, pd.DataFrame):
            value = value.to_numpy()
    if isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 1 and len(value):
        try:
            value = np.stack([np.asarray(v) for v in value])
        except ValueError as error:  # rows of different lengths
            raise ConfigValidationError(f"{name} rows must all have the same length: {error}") from None
    return float32_array(value, name)


def column_values(value: Any, name: str) -> Any:
    """A pandas Series/Index or pyarrow (Chunked)Array column as a NumPy array (integers, read in
    place where they already are int64) or a list (text); anything else is returned as it is."""
    module = _module_of(value)
    if module == "pyarrow":
        import pyarrow as pa

        if value.null_count:
            row = int(np.flatnonzero(value.is_null().to_numpy(zero_copy_only=False))[0])
            raise ConfigValidationError(f"{name} row {row} is null")
        if pa.types.is_integer(value.type):
            return value.to_numpy()
        return value.to_pylist()
    if module == "pandas":
        import pandas as pd

        if isinstance(value, (pd.Series, pd.Index)):
            missing = np.asarray(value.isna())
            if missing.any():
                row = int(np.flatnonzero(missing)[0])
                raise ConfigValidationError(f"{name} row {row} is null")
            if pd.api.types.is_integer_dtype(value.dtype):
                return value.to_numpy(dtype=np.int64 if pd.api.types.is_signed_integer_dtype(value.dtype) else None)
            return value.tolist()
    return value


def payload_rows(value: Any) -> Any:
    """Payloads given as a pandas DataFrame or a pyarrow Table/StructArray: one dict per row."""
    module = _module_of(value)
    if module == "pandas":
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            return value.to_dict("records")
        if isinstance(value, pd.Series):
            return value.tolist()
    if module == "pyarrow":
        return value.to_pylist()
    return value


def json_default(value: Any) -> Any:
    """``json.dumps``'s ``default`` for payloads: NumPy scalars (np.int64, np.float32, np.bool_, …)
    become their Python values and NumPy arrays (0-d included) lists or values; anything else is
    refused as ``json`` refuses it."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
