"""The synthetic clustered set of the benchmarks: SYNTH_CENTRES Gaussian centres ~N(0, 1) in SYNTH_DIM
dimensions; each point is a uniformly chosen centre plus SYNTH_SIGMA * N(0, 1) noise. Stream 1 is the
corpus (bench/suite.py's 1M x 384 train set), stream 2 the queries; both from seed SYNTH_SEED."""

from __future__ import annotations

import numpy as np

SYNTH_SEED = 20240611
SYNTH_CENTRES = 1000
SYNTH_SIGMA = 0.3
SYNTH_DIM = 384
CORPUS, QUERIES = 1, 2  # the streams


def draw(rows: int, stream: int) -> np.ndarray:
    """``rows`` points of ``stream`` (float32, SYNTH_DIM wide); the same for the same arguments."""
    centres = np.random.default_rng(SYNTH_SEED).standard_normal((SYNTH_CENTRES, SYNTH_DIM), dtype=np.float32)
    rng = np.random.default_rng([SYNTH_SEED, stream])
    labels = rng.integers(0, SYNTH_CENTRES, rows)
    out = np.empty((rows, SYNTH_DIM), dtype=np.float32)
    for start in range(0, rows, 65536):
        stop = min(rows, start + 65536)
        noise = rng.standard_normal((stop - start, SYNTH_DIM), dtype=np.float32)
        out[start:stop] = centres[labels[start:stop]] + np.float32(SYNTH_SIGMA) * noise
    return out
