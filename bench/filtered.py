"""Filtered search in the benchmark suite (``bench/run``, ``--only filtered``): recall@10 and queries
per second of shardvec, LanceDB and sqlite-vec under one filter at a time, from 50 % down to 0.01 % of
the rows passing, on the suite's synthetic clustered set, every system over the same rows and filter
values in one run.

Each row i carries two filter columns: ``sel = (i * 7919) % n`` (a permutation of 0..n-1 when n is
prime to 7919, so ``sel < s * n`` passes exactly s * n rows, spread over the whole set) and
``lang = "l%02d" % ((i * 31) % 100)`` (100 strings, 1 % of the rows each). The filters: ``sel < s * n``
for s in SELECTIVITIES, ``lang == 'l07'`` (1 %), and no filter (the baseline of the QPS target).

- shardvec: one snapshot written with ``filter_columns={"sel": "int", "lang": "string"}`` (the values
  in each row's payload), searched with ``filter=`` at the snapshot's default probing and with every
  shard probed; ``shards searched`` is the mean ``num_shards_queried`` of the batch.
- LanceDB: the suite's IVF_FLAT index (its partition count) plus a BTREE scalar index on ``sel`` and a
  BITMAP index on ``lang``, queried with ``.where(filter, prefilter=True)`` at LanceDB's default
  nprobes and with every partition probed.
- sqlite-vec: one vec0 table with the two columns as vec0 metadata columns (``raw_vec0 build
  --metadata``), queried with ``embedding MATCH ? AND k = ? AND <filter>`` (``raw_vec0 search --where``).

Ground truth: an exact NumPy top-10 over the rows each filter passes; recall counts a returned row the
filter refuses as a miss, a row within float32 rounding of the 10th distance as a tie, and is out of
min(10, passing rows).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from suite import (
    K,
    RECALL_TARGET,
    Budget,
    Build,
    CpuWatch,
    Dataset,
    DatasetPlan,
    Row,
    Target,
    best_row,
    compute_ground_truth,
    folder_bytes,
    ids_matrix,
    log,
    make_plans,
    measure,
    process_on_one_cpu,
    raw_vec0,
    raw_vec0_search,
    shardvec_write,
    synthetic,
)

SELECTIVITIES = (0.5, 0.1, 0.01, 0.001, 0.0001)
SEL_STRIDE = 7919  # sel = (i * SEL_STRIDE) % n
LANG_VALUES = 100
LANG_PICKED = "l07"
COLUMNS = {"sel": "int", "lang": "string"}
NO_FILTER = "no filter"
# Every system scores in float32: a row within float32 rounding of the K-th distance is a tie here,
# not a miss. That rounding is relative for the parts of a distance (about 1e-7; a 100k-row run met a
# pair 1.2e-8 apart) and, for a cosine distance 1 - q.x (a float32 dot product of 384 terms summing to
# about 1), absolute: about 1e-7 x sqrt(384); a 1M-row run met a pair 2.0e-7 apart at distance 0.074,
# which vec0's arithmetic ordered the other way.
FLOAT32_TIE_RTOL = 1e-6
FLOAT32_TIE_ATOL = 1e-6
# The targets: recall@10 with every shard probed (exact) and at the default probing, each
# filter; 1-thread QPS at 1 % selectivity / unfiltered at the default probing; 1-thread QPS against
# LanceDB at each filter.
FILTER_TARGETS: dict[str, float] = {"recall_full": 1.0, "recall_default": RECALL_TARGET,
                                    "qps_1pct_vs_unfiltered": 1.0, "qps_vs_lancedb": 1.0}


@dataclass(frozen=True)
class FilterCase:
    name: str  # "sel < 5000 (50 %)"
    cel: str | None  # shardvec's filter; None: no filter
    sql: str | None  # LanceDB's and sqlite-vec's
    selectivity: float  # share of the rows that pass


@dataclass
class FilteredRow:
    case: str
    selectivity: float
    passing: int
    row: Row
    shards_searched: float | None = None  # shardvec: mean num_shards_queried over the batch


def make_plan(quick: bool, rows: int) -> DatasetPlan:
    """The synthetic data set's plan (its budgets and peer settings), with the filtered run's sizes:
    quick, a 20k-row smoke with 16 shards; else ``rows`` rows, 1000 queries and 64 shards."""
    base = make_plans(quick, rows)["synthetic"]
    if quick:
        # 29 settings in all: a smaller time budget each than the unfiltered smoke's.
        budget = Budget(latency_max=20, latency_min=5, latency_s=0.2, batch_min=20, batch_s=0.3)
        return dataclasses.replace(base, name="filtered", title="Filtered search, synthetic 384-d cosine (quick: 20k x 100)",
                                   train_rows=20_000, query_rows=100, raw_vec0_queries=10, sweeps={16: (16,)},
                                   budget=budget, note="quick smoke run")
    scale = f"{rows // 1000}k" if rows < 1_000_000 else f"{rows / 1e6:g}M"
    return dataclasses.replace(base, name="filtered", title=f"Filtered search, synthetic clustered {scale} x 384, cosine",
                               raw_vec0_queries=30, sweeps={64: (64,)})


def filter_values(n: int) -> tuple[np.ndarray, list[str]]:
    i = np.arange(n, dtype=np.int64)
    return (i * SEL_STRIDE) % n, [f"l{v:02d}" for v in ((i * 31) % LANG_VALUES).tolist()]


def cases(n: int) -> list[FilterCase]:
    out = [FilterCase(NO_FILTER, None, None, 1.0)]
    for s in SELECTIVITIES:
        bound = max(1, round(s * n))
        out.append(FilterCase(f"sel < {bound} ({100 * s:g} %)", f"sel < {bound}", f"sel < {bound}", s))
    out.append(FilterCase(f"lang == '{LANG_PICKED}' (1 %)", f"lang == '{LANG_PICKED}'", f"lang = '{LANG_PICKED}'",
                          1 / LANG_VALUES))
    return out


def passing_rows(case: FilterCase, sel: np.ndarray, lang: list[str]) -> np.ndarray | None:
    if case.cel is None:
        return None
    if case.cel.startswith("sel < "):
        return sel < int(case.cel.removeprefix("sel < "))
    return np.array([v == LANG_PICKED for v in lang])


def run_shardvec(data: Dataset, views: dict[str, Dataset], sel: np.ndarray, lang: list[str], cores: int,
                 floor: dict[str, Any], work: Path, all_cases: list[FilterCase]) -> tuple[list[FilteredRow], Build]:
    from shardvec.vector import ShardedVectorReader

    num_dbs = next(iter(data.plan.sweeps))
    store, build_root = work / "store", work / "build"
    payloads = [f'{{"sel":{s},"lang":"{g}"}}' for s, g in zip(sel.tolist(), lang)]
    log(f"  shardvec write, {num_dbs} shards, filter columns {COLUMNS}, all cores")
    seconds, size = shardvec_write(data.train, data.plan.metric, num_dbs, store, build_root,
                                   knobs={"filter_columns": COLUMNS}, payloads=payloads)
    del payloads
    n = len(data.train)
    build = Build("shardvec", f"{num_dbs} shards, trained, filter columns sel (int) and lang (string)", seconds,
                  n / seconds, cores, size, "write_arrays with filter_columns; payloads as JSON text")
    log(f"    {seconds:.2f} s, {size / 2**20:.1f} MiB")
    single = ShardedVectorReader(s3_prefix=str(store), local_root=str(work / "cache-1"), max_workers=1,
                                 preload_shards=True)
    batch = ShardedVectorReader(s3_prefix=str(store), local_root=str(work / "cache-n"), preload_shards=True)
    rows: list[FilteredRow] = []
    try:
        for probes, setting in ((None, "default probing"), (num_dbs, f"all {num_dbs} shards")):
            for case in all_cases:
                view = views[case.name]
                searched: list[float] = []

                def one(v: np.ndarray, probes: int | None = probes, cel: str | None = case.cel) -> Any:
                    return single.search(v, K, num_probes=probes, filter=cel)

                def many(m: np.ndarray, probes: int | None = probes, cel: str | None = case.cel,
                         searched: list[float] = searched) -> np.ndarray:
                    responses = batch.batch_search(m, K, num_probes=probes, filter=cel)
                    searched.extend(r.num_shards_queried for r in responses)
                    return ids_matrix([[int(h.id) for h in r.results] for r in responses])

                log(f"  filter: {case.name}")
                row = measure("shardvec", num_dbs, probes, setting, view, one, many, lambda qs: 0.0, view.queries,
                              floor, cores)
                rows.append(FilteredRow(case.name, case.selectivity, passing_count(view), row, float(np.mean(searched))))
    finally:
        single.close()
        batch.close()
        for path in (store, build_root, work / "cache-1", work / "cache-n"):
            shutil.rmtree(path, ignore_errors=True)
    return rows, build


def run_lancedb(data: Dataset, views: dict[str, Dataset], sel: np.ndarray, lang: list[str], cores: int,
                floor: dict[str, Any], work: Path, all_cases: list[FilterCase]) -> tuple[list[FilteredRow], Build]:
    for name in ("LANCE_LOG", "LANCEDB_LOG"):
        os.environ.setdefault(name, "error")
    import lancedb
    import pyarrow as pa
    from lancedb.index import Bitmap, BTree, IvfFlat

    x, _ = data.faiss_vectors()
    n, d = x.shape
    partitions = data.plan.peers.lance_partitions
    folder = work / "lancedb"
    log(f"  LanceDB IVF_FLAT, {partitions} partitions, BTREE on sel, BITMAP on lang: table + indexes")
    db = lancedb.connect(str(folder))
    t0 = time.perf_counter()
    table = db.create_table("vectors", data=pa.table({
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), d),
        "sel": pa.array(sel), "lang": pa.array(lang)}))
    table.create_index("vector", config=IvfFlat(distance_type="l2" if data.plan.metric == "l2" else "cosine",
                                                 num_partitions=partitions))
    table.create_index("sel", config=BTree())
    table.create_index("lang", config=Bitmap())
    seconds = time.perf_counter() - t0
    build = Build("lancedb", f"IVF_FLAT, {partitions} partitions, BTREE sel, BITMAP lang", seconds, n / seconds,
                  cores, folder_bytes(folder), "create_table + vector index + 2 scalar indexes, all cores")
    log(f"    {seconds:.2f} s")
    rows: list[FilteredRow] = []
    try:
        for nprobes, setting in ((None, "default nprobes"), (partitions, f"nprobes={partitions} (all)")):
            for case in all_cases:
                view = views[case.name]

                def query(v: np.ndarray, nprobes: int | None = nprobes, sql: str | None = case.sql) -> list[int]:
                    search = table.search(v, vector_column_name="vector").limit(K).select(["id"])
                    if sql is not None:
                        search = search.where(sql, prefilter=True)
                    if nprobes is not None:
                        search = search.nprobes(nprobes)
                    return search.to_arrow()["id"].to_pylist()

                def many(m: np.ndarray, query: Any = query) -> np.ndarray:
                    with concurrent.futures.ThreadPoolExecutor(cores) as pool:
                        return ids_matrix(list(pool.map(query, m)))

                log(f"  filter: {case.name}")
                row = measure("lancedb", None, nprobes, setting, view, query, many, lambda qs: 0.0, view.queries,
                              floor, cores, f"IVF_FLAT, {partitions} partitions", one_thread=process_on_one_cpu)
                rows.append(FilteredRow(case.name, case.selectivity, passing_count(view), row))
    finally:
        del table, db
        shutil.rmtree(folder, ignore_errors=True)
    return rows, build


def run_sqlite_vec(data: Dataset, views: dict[str, Dataset], sel: np.ndarray, lang: list[str], floor: dict[str, Any],
                   work: Path, binary: Path, all_cases: list[FilterCase]) -> tuple[list[FilteredRow], Build, str]:
    """The vec0 table with metadata columns, then each filter; also returns SQLite's version."""
    npy, meta, db = work / "train.npy", work / "metadata.tsv", work / "meta.db"
    np.save(npy, data.train)
    with meta.open("w") as out:
        out.write("sel integer\tlang text\n")
        out.writelines(f"{s}\t{g}\n" for s, g in zip(sel.tolist(), lang))
    log(f"  sqlite-vec build: 1 vec0 table with metadata columns sel integer, lang text ({len(data.train)} rows)")
    built = raw_vec0(binary, "build", "--npy", str(npy), "--db", str(db), "--metric", data.plan.metric,
                     "--pragmas", "default", "--metadata", str(meta))
    npy.unlink()
    meta.unlink()
    build = Build("sqlite-vec", "1 vec0 table, metadata columns sel, lang", built["seconds"], built["vectors_per_s"], 1,
                  built["bytes"], "raw_vec0 build --pragmas default --metadata")
    rows = []
    try:
        for case in all_cases:
            view = views[case.name]
            extra = () if case.sql is None else ("--where", case.sql)
            log(f"  filter: {case.name}")
            row = raw_vec0_search(view, binary, db, work, floor, "metadata columns", *extra)
            rows.append(FilteredRow(case.name, case.selectivity, passing_count(view), row))
    finally:
        db.unlink(missing_ok=True)
    return rows, build, str(built.get("sqlite", "?"))


def passing_count(view: Dataset) -> int:
    return len(view.train) if view.passes is None else int(view.passes.sum())


def run(plan: DatasetPlan, binary: Path, cores: int, work_parent: Path, quick: bool) -> dict[str, Any]:
    log(f"== {plan.title}")
    watch = CpuWatch()
    data = synthetic(plan)
    n = len(data.train)
    log(f"  data: {data.description}")
    sel, lang = filter_values(n)
    all_cases = cases(n)
    data.unit_train()  # computed once, shared by every filter's view
    views: dict[str, Dataset] = {}
    t0 = time.perf_counter()
    for case in all_cases:
        views[case.name] = dataclasses.replace(data, passes=passing_rows(case, sel, lang), tie_rtol=FLOAT32_TIE_RTOL,
                                               tie_atol=FLOAT32_TIE_ATOL)
        compute_ground_truth(views[case.name])
    log(f"  exact filtered top-{K} of {len(data.queries)} queries, {len(all_cases)} filters, in "
        f"{time.perf_counter() - t0:.1f} s")
    floor = raw_vec0(binary, "floor", "--bytes", str(data.vector_bytes), "--threads", str(cores))
    work = Path(tempfile.mkdtemp(prefix="shardvec-bench-filtered-", dir=work_parent))
    try:
        log("-- shardvec, filtered")
        sv_rows, sv_build = run_shardvec(data, views, sel, lang, cores, floor, work, all_cases)
        log("-- LanceDB, filtered")
        lance_rows, lance_build = run_lancedb(data, views, sel, lang, cores, floor, work, all_cases)
        log("-- sqlite-vec metadata columns, filtered")
        vec_rows, vec_build, sqlite_version = run_sqlite_vec(data, views, sel, lang, floor, work, binary, all_cases)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = sv_rows + lance_rows + vec_rows
    others = watch.others_pct()
    return {"name": plan.name, "title": plan.title, "quick": quick,
            "description": f"{data.description}; {plan.note}", "rows": rows, "builds": [sv_build, lance_build, vec_build],
            "cases": [dataclasses.asdict(c) for c in all_cases], "other_cpu_pct": others,
            "targets": targets(plan, rows), "sqlite": sqlite_version}


def targets(plan: DatasetPlan, rows: list[FilteredRow]) -> list[Target]:
    """The issue's targets, one per filter where they are per filter."""
    out: list[Target] = []
    num_dbs = next(iter(plan.sweeps))
    qps = lambda r: r.latency.qps  # noqa: E731

    def pick(system: str, case: str, setting: str | None = None) -> list[Row]:
        return [f.row for f in rows if f.row.system == system and f.case == case
                and (setting is None or f.row.setting == setting)]

    def fastest(system: str, case: str) -> Row | None:
        """The fastest 1-thread setting reaching RECALL_TARGET, else the most accurate one."""
        found = pick(system, case)
        return best_row(found, lambda r: True, RECALL_TARGET, qps) or max(found, key=lambda r: r.recall, default=None)

    filtered = list(dict.fromkeys(f.case for f in rows if f.case != NO_FILTER))
    for case in filtered:
        for name, setting in (("recall_full", f"all {num_dbs} shards"), ("recall_default", "default probing")):
            r = next(iter(pick("shardvec", case, setting)), None)
            out.append(Target(plan.name, f"{name} {case}", f"shardvec {setting}, recall@10 over {r.recall_queries if r else 0} queries",
                              None if r is None else r.recall, FILTER_TARGETS[name], "recall"))
    unfiltered = next(iter(pick("shardvec", NO_FILTER, "default probing")), None)
    for case in (c for c in filtered if "(1 %)" in c):
        r = next(iter(pick("shardvec", case, "default probing")), None)
        if r is None or unfiltered is None:
            out.append(Target(plan.name, f"qps_1pct_vs_unfiltered {case}", "not measured", None,
                              FILTER_TARGETS["qps_1pct_vs_unfiltered"]))
            continue
        out.append(Target(plan.name, f"qps_1pct_vs_unfiltered {case}",
                          f"shardvec default probing, 1-thread QPS: {case} {r.latency.qps:,.1f} / no filter "
                          f"{unfiltered.latency.qps:,.1f}",
                          r.latency.qps / unfiltered.latency.qps, FILTER_TARGETS["qps_1pct_vs_unfiltered"]))
    for case in filtered:
        ours, theirs = fastest("shardvec", case), fastest("lancedb", case)
        if ours is None or theirs is None:
            out.append(Target(plan.name, f"qps_vs_lancedb {case}", "not measured", None, FILTER_TARGETS["qps_vs_lancedb"]))
            continue
        out.append(Target(plan.name, f"qps_vs_lancedb {case}",
                          f"1-thread QPS, each system's fastest setting with recall@10 >= {RECALL_TARGET} (else its most "
                          f"accurate): shardvec {ours.setting} ({ours.recall:.4f}: {ours.latency.qps:,.1f}) / LanceDB "
                          f"{theirs.setting} ({theirs.recall:.4f}: {theirs.latency.qps:,.1f})",
                          ours.latency.qps / theirs.latency.qps, FILTER_TARGETS["qps_vs_lancedb"]))
    return out


def sanity_failures(result: dict[str, Any]) -> list[str]:
    """shardvec with every shard probed must answer every filter exactly."""
    num_dbs = {f.row.num_dbs for f in result["rows"] if f.row.system == "shardvec"}
    return [f"filtered: shardvec {f.row.setting} {f.case} recall@10 {f.row.recall:.4f} < 0.999"
            for f in result["rows"] if f.row.system == "shardvec" and f.row.probes in num_dbs and f.row.recall < 0.999]


def markdown(result: dict[str, Any]) -> list[str]:
    lines = [f"## {result['title']}", "", result["description"] + ".", "",
             "Filters: " + "; ".join(f"`{c['cel']}`" for c in result["cases"] if c["cel"]) + " (shardvec's CEL; LanceDB "
             "and sqlite-vec get the same condition in SQL). Every system answers the same queries over the same rows "
             "and values; recall@10 is against an exact NumPy top-10 over the rows the filter passes (a returned row "
             "the filter refuses is a miss, one within float32 rounding (1e-6 relative plus 1e-6) of the 10th distance a tie; out of "
             "min(10, passing rows)). shardvec: `filter=` at the snapshot's "
             "default probing and with every shard probed (*shards* = mean `num_shards_queried`); LanceDB: the "
             "suite's IVF_FLAT index, BTREE on sel, BITMAP on lang, `.where(filter, prefilter=True)`; sqlite-vec: "
             "one vec0 table with metadata columns, `embedding MATCH ? AND k = ? AND filter`. "
             f"Other processes used {result['other_cpu_pct']:.1f} % of the machine's CPU meanwhile.", "",
             "| system | setting | filter | passing rows | recall@10 | 1t mean ms | 1t p50 ms | 1t p99 ms | 1t QPS | "
             "batch QPS | shards | n (1t / batch) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for f in result["rows"]:
        r = f.row
        lat = r.latency
        shards = "–" if f.shards_searched is None else f"{f.shards_searched:.2f}"
        batch = "–" if r.batch_qps is None else f"{r.batch_qps:,.1f}"
        lines.append(f"| {r.label} | {r.setting} | {f.case} | {f.passing:,} | {r.recall:.4f} | "
                     f"{lat.mean_ms:.2f} | {lat.p50_ms:.2f} | {lat.p99_ms:.2f} | {lat.qps:,.1f} | {batch} | {shards} | "
                     f"{lat.n} / {r.recall_queries} |")
    lines += ["", "| build | setting | seconds | vectors/s | bytes on disk | how |", "|---|---|---|---|---|---|"]
    for b in result["builds"]:
        lines.append(f"| {b.system} | {b.setting} | {b.seconds:.2f} | {b.vectors_per_s:,.0f} | {b.bytes / 1e6:,.1f} MB | "
                     f"{b.note} |")
    lines += ["", f"### Issue 29 targets ({result['name']})" + (" — quick smoke run, no comparison claimed"
                                                               if result["quick"] else ""), "",
              "| target | measured | threshold | pass | how |", "|---|---|---|---|---|"]
    for t in result["targets"]:
        if t.unit == "recall":
            measured, threshold = ("–" if t.ratio is None else f"{t.ratio:.4f}"), (
                "= 1.0" if t.threshold == 1.0 else f"≥ {t.threshold:.2f}")
        else:
            measured, threshold = ("–" if t.ratio is None else f"{t.ratio:.2f}x"), f"≥ {t.threshold:.2f}x"
        mark = {True: "✅", False: "❌", None: "–"}[t.passed]
        lines.append(f"| {t.name} | {measured} | {threshold} | {mark} | {t.detail} |")
    return lines + [""]


def plot(axes: Any, result: dict[str, Any]) -> None:
    """Two panels: 1-thread QPS and recall@10 against the share of rows passing, one curve per system
    and setting; the unfiltered QPS as a dotted line per curve."""
    top, bottom = axes
    colors = {"shardvec": "tab:blue", "lancedb": "tab:cyan", "sqlite-vec": "tab:red"}
    curves = dict.fromkeys((f.row.system, f.row.setting) for f in result["rows"])
    for i, (system, setting) in enumerate(curves):
        picked = [f for f in result["rows"] if (f.row.system, f.row.setting) == (system, setting)]
        ints = sorted((f for f in picked if f.case.startswith("sel")), key=lambda f: f.selectivity)
        style = "-" if i % 2 == 0 else "--"
        label = f"{system}, {setting}"
        top.plot([100 * f.selectivity for f in ints], [f.row.latency.qps for f in ints], marker="o", linestyle=style,
                 color=colors[system], label=label, linewidth=2 if system == "shardvec" else 1)
        bottom.plot([100 * f.selectivity for f in ints], [f.row.recall for f in ints], marker="o", linestyle=style,
                    color=colors[system], label=label, linewidth=2 if system == "shardvec" else 1)
        for f in picked:
            if f.case == NO_FILTER:
                top.axhline(f.row.latency.qps, color=colors[system], linestyle=":", linewidth=0.8)
            elif not f.case.startswith("sel"):
                top.plot([100 * f.selectivity], [f.row.latency.qps], marker="s", color=colors[system], linestyle="none")
                bottom.plot([100 * f.selectivity], [f.row.recall], marker="s", color=colors[system], linestyle="none")
    for ax, what in ((top, "queries per second, 1 thread (log)"), (bottom, "recall@10")):
        ax.set_xscale("log")
        ax.set_xlabel("% of rows passing the filter (log; squares: the string filter; dotted: no filter)")
        ax.set_ylabel(what)
        ax.set_title(f"{result['title']}: {what.split(' (')[0]}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    top.set_yscale("log")
    bottom.axhline(RECALL_TARGET, color="grey", linewidth=0.8, linestyle=":")
