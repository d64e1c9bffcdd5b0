"""``search_sharded`` for Dask DataFrames.

The driver pins the snapshot and checks the arguments (``shardvec.reader._batch.plan_search``);
``map_partitions`` adds each query's group (the shard it routes to first, by the C++ router on the
workers), a task-based ``shuffle`` on it co-locates each group, and one task per partition searches
its queries in batched engine calls with a reader of the pinned snapshot, cached per worker process.
The result is a lazy Dask DataFrame; nothing is computed or collected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa

from shardvec.errors import ConfigValidationError
from shardvec.reader._batch import GROUP_COL, SearchSpec, plan_search, result_schema, route_table, search_chunks

__all__ = ["search_sharded"]


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def _route_partition(frame: pd.DataFrame, spec: SearchSpec) -> pd.DataFrame:
    group = route_table(spec, _arrow(frame))
    return frame.assign(**{GROUP_COL: np.asarray(group.to_numpy(zero_copy_only=False), dtype=np.int64)})


def _search_partition(frame: pd.DataFrame, spec: SearchSpec, meta: pd.DataFrame) -> pd.DataFrame:
    frame = frame.sort_values(GROUP_COL, kind="stable")
    table = _arrow(frame[[spec.id_col, spec.query_col]])
    if table.num_rows == 0:
        return meta
    return search_chunks(spec, table).to_pandas().astype(meta.dtypes.to_dict())


def search_sharded(df: dd.DataFrame, store: str, query_col: str, id_col: str, top_k: int = 10,
                   num_probes: int | None = None, filter: str | None = None, *,  # noqa: A002
                   sublist_probes: int | None = None, max_extra_probes: int | None = None,
                   shard_ids: Sequence[int] | None = None, routing_context: Mapping[str, Any] | None = None,
                   manifest_ref: str | None = None, local_root: str | None = None, max_workers: int = 1,
                   credential_provider: Any = None, s3_connection_options: Mapping[str, Any] | None = None
                   ) -> dd.DataFrame:
    """The ``top_k`` nearest rows of the snapshot at ``store`` for every query of ``df``, as a lazy
    Dask DataFrame with the columns ``query_id``, ``rank``, ``id``, ``score``, ``payload`` (see
    :func:`shardvec.reader.spark.search_sharded`; the same arguments)."""
    spec = plan_search(store=store, query_col=query_col, id_col=id_col, columns=list(df.columns), top_k=top_k,
                       num_probes=num_probes, filter=filter, sublist_probes=sublist_probes,
                       max_extra_probes=max_extra_probes, shard_ids=shard_ids, routing_context=routing_context,
                       manifest_ref=manifest_ref, local_root=local_root, max_workers=max_workers,
                       credential_provider=credential_provider, s3_connection_options=s3_connection_options)
    kind = df.dtypes[query_col]
    if isinstance(kind, pd.StringDtype) or (isinstance(kind, pd.ArrowDtype) and pa.types.is_string(kind.pyarrow_dtype)):
        raise ConfigValidationError(
            f"query_col {query_col!r} is a text column ({kind}) in this Dask DataFrame, not vectors: Dask's "
            "'dataframe.convert-string' setting (on by default) turned its objects into strings when the DataFrame "
            "was made; make it after dask.config.set({'dataframe.convert-string': False}), or hold the vectors in "
            "an Arrow list column (pd.ArrowDtype(pa.list_(pa.float32(), dim)))")
    queries = df[[id_col, query_col]]
    routed = queries.map_partitions(_route_partition, spec,
                                    meta=queries._meta.assign(**{GROUP_COL: pd.Series(dtype="int64")}))
    shuffled = routed.shuffle(on=GROUP_COL, npartitions=routed.npartitions, shuffle_method="tasks")
    id_type = _arrow(queries._meta[[id_col]]).schema.field(id_col).type
    meta = result_schema(spec, id_type).empty_table().to_pandas()
    return shuffled.map_partitions(_search_partition, spec, meta, meta=meta)
