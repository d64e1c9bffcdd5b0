"""``search_sharded`` for Ray Datasets.

The driver pins the snapshot and checks the arguments (``shardvec.reader._batch.plan_search``);
``map_batches`` adds each query's group (the shard it routes to first, by the C++ router on the
workers), ``groupby(group).map_groups`` hands each group to one task, which searches its queries in
batched engine calls with a reader of the pinned snapshot, cached per worker process. The result is
a lazy Dataset; nothing is collected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import ray.data

from shardvec.reader._batch import GROUP_COL, SearchSpec, plan_search, route_table, search_chunks

__all__ = ["search_sharded"]


def _router(spec: SearchSpec) -> Callable[[pa.Table], pa.Table]:
    def route(batch: pa.Table) -> pa.Table:
        return batch.append_column(GROUP_COL, route_table(spec, batch))
    return route


def _searcher(spec: SearchSpec) -> Callable[[pa.Table], pa.Table]:
    def search(group: pa.Table) -> pa.Table:
        return search_chunks(spec, group)
    return search


def search_sharded(ds: ray.data.Dataset, store: str, query_col: str, id_col: str, top_k: int = 10,
                   num_probes: int | None = None, filter: str | None = None, *,  # noqa: A002
                   sublist_probes: int | None = None, max_extra_probes: int | None = None,
                   shard_ids: Sequence[int] | None = None, routing_context: Mapping[str, Any] | None = None,
                   manifest_ref: str | None = None, local_root: str | None = None, max_workers: int = 1,
                   credential_provider: Any = None, s3_connection_options: Mapping[str, Any] | None = None
                   ) -> ray.data.Dataset:
    """The ``top_k`` nearest rows of the snapshot at ``store`` for every query of ``ds``, as a lazy
    Dataset with the columns ``query_id``, ``rank``, ``id``, ``score``, ``payload`` (see
    :func:`shardvec.reader.spark.search_sharded`; the same arguments)."""
    spec = plan_search(store=store, query_col=query_col, id_col=id_col, columns=ds.columns(), top_k=top_k,
                       num_probes=num_probes, filter=filter, sublist_probes=sublist_probes,
                       max_extra_probes=max_extra_probes, shard_ids=shard_ids, routing_context=routing_context,
                       manifest_ref=manifest_ref, local_root=local_root, max_workers=max_workers,
                       credential_provider=credential_provider, s3_connection_options=s3_connection_options)
    routed = ds.select_columns([id_col, query_col]).map_batches(_router(spec), batch_format="pyarrow")
    return routed.groupby(GROUP_COL).map_groups(_searcher(spec), batch_format="pyarrow")
