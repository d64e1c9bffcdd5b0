"""Distributed writers: ``shardvec.writer.spark``, ``shardvec.writer.dask`` and ``shardvec.writer.ray``,
each with ``write_sharded(data, config, input: VectorColumnInput, options=None) -> BuildResult``.

The engines are imported only by their own module, so ``shardvec`` works without them.
"""
