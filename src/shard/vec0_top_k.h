// The k nearest rows of a ScanTable exactly as vec0's `MATCH ? AND k = ?` returns them: the same
// rows, the same float distances bit for bit, and ties in vec0's order. The scan kernel picks
// candidates fast; each candidate is then rescored with vec0's own arithmetic (vec0_distance.h).
//
// Why the candidates hold vec0's top k: the kernel's distance of a row differs from vec0's by at
// most a bound (KernelScoreSlack). The kernel is asked for k + margin rows; T is the k-th vec0
// distance among them (or max_distance if that is lower). Every row left out has a kernel distance
// at or above the last one returned, so its vec0 distance is at least LowestExact(that); when this
// is above T no left-out row can enter, and the rescored candidates are the answer. Otherwise the
// query is scanned again for twice as many rows (at most every row: a bounded loop). A candidate
// whose distance is not finite (a sum that overflows float) makes the query rescore every row.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "shard/scan_kernel.h"

namespace shardvec {

// Like ScanTopK, but with vec0's scores and order: ascending distance, ties by chunk, then by slot
// from the last (as vec0's chunk-by-chunk selection leaves them). Rows farther than
// options.max_distance (in vec0's distance) are left out; rows at it are kept. options.stats
// describes the first candidate scan.
void Vec0TopK(const ScanTable& table, std::span<const float* const> queries, int64_t k,
              std::vector<std::vector<ScanHit>>* out, const ScanOptions& options = {});

// The k nearest of the rows in `fast` (ScanTable rows, each with its kernel distance from ScoreRows
// as its score, in any order) to `query` in vec0's distances and order, those farther than
// max_distance left out: the rescore of another scan's candidates (the int8 pre-scan's). Only the
// nearest by kernel distance are rescored, more while a row left out might still enter (the slack
// argument of Vec0TopK), so the answer is that of rescoring every row given.
void Vec0RescoreFast(const ScanTable& table, const float* query, std::vector<ScanHit> fast, int64_t k,
                     double max_distance, std::vector<ScanHit>* hits);

// The k nearest of `rows` (ScanTable rows, in any order) to each query, every row scored with vec0's
// arithmetic (no candidate scan: the way to search a few scattered rows), in vec0's distances and
// order, those farther than max_distance left out. `out` gets one list per query.
void Vec0TopKOfRows(const ScanTable& table, std::span<const float* const> queries, std::span<const int64_t> rows,
                    int64_t k, double max_distance, std::vector<std::vector<ScanHit>>* out);

// The kernel candidates Vec0TopK first asks for, for k hits (k plus a margin, at most `rows`).
int64_t Vec0CandidateCount(int64_t k, int64_t rows);

}  // namespace shardvec
