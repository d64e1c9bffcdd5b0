"""Distributed batch search: ``search_sharded`` over a DataFrame of queries on Spark
(:mod:`shardvec.reader.spark`), Dask (:mod:`shardvec.reader.dask`) and Ray (:mod:`shardvec.reader.ray`).

Each returns a distributed DataFrame / Dataset with the columns ``query_id, rank, id, score,
payload`` (rank from 0; ``payload`` as JSON text), equal to what ``ShardedVectorReader.batch_search``
answers on one machine. Queries are routed on the workers, grouped by the shard they route to first,
and each group is searched in one batched engine call by a reader of the snapshot pinned when the
search was planned; the driver never collects queries or results.
"""

__all__: list[str] = []
