"""The engines the distributed benchmarks start in their child processes, each on this machine alone:
Spark ``local[2]`` (127.0.0.1, 8 shuffle partitions), a Dask LocalCluster of 2 worker processes, Ray
with 2 CPUs; no dashboards, no progress bars, quiet logs. The children find this module on PYTHONPATH
(``child_env``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent


def child_env() -> dict[str, str]:
    """The environment of a child script that imports this module."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(BENCH_DIR) if not path else f"{BENCH_DIR}{os.pathsep}{path}"}


def start(engine: str) -> Any:
    """Starts ``engine`` ("spark", "dask" or "ray") in this process: the SparkSession for Spark, the Dask
    Client for Dask, None for Ray."""
    if engine == "spark":
        from pyspark.sql import SparkSession

        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
                 .config("spark.sql.shuffle.partitions", "8").getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        return spark
    if engine == "dask":
        import dask
        from dask.distributed import Client, LocalCluster

        dask.config.set({"dataframe.convert-string": False})
        return Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                   host="127.0.0.1"))
    if engine == "ray":
        import ray
        import ray.data

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=1 << 30, logging_level="ERROR")
        ray.data.DataContext.get_current().enable_progress_bars = False
        return None
    raise ValueError(f"unknown engine {engine!r}")
