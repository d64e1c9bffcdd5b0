# `shardvec serve` in a container: one stateless replica of the HTTP search service.
#
#   docker build -t shardvec-serve .
#   docker run --rm -p 8080:8080 -v /srv/snapshots/fashion-mnist:/store:ro shardvec-serve --store /store
#   docker run --rm -p 8080:8080 -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_REGION \
#       shardvec-serve --store s3://bucket/prefix
#
# Arguments after the image name are `shardvec serve` flags; the image adds --host 0.0.0.0 (inside a
# container the port is reached through Docker's port mapping) and --port 8080. Each replica keeps its
# own shard cache in /cache (a volume, or the container's disk); the store is the only shared state.

FROM debian:bookworm AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates python3 python3-venv \
      libsqlite3-dev libcurl4-openssl-dev libssl-dev libpugixml-dev nlohmann-json3-dev libcli11-dev \
      libspdlog-dev libfmt-dev libxxhash-dev libzstd-dev libpq-dev libcpp-httplib-dev rapidjson-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# vec0.so from the pinned PyPI wheel, as scripts/setup fetches it.
RUN python3 -m venv /tmp/venv \
    && /tmp/venv/bin/python -m pip install -q "$(grep -E '^sqlite-vec==' requirements.txt)" \
    && mkdir -p /opt/shardvec \
    && cp "$(/tmp/venv/bin/python -c 'import sqlite_vec; print(sqlite_vec.loadable_path() + ".so")')" /opt/shardvec/vec0.so
# The CLI alone: no tests, benchmarks or Parquet inputs (those need the venv's pyarrow).
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHARDVEC_BUILD_TESTS=OFF \
      -DSHARDVEC_BUILD_BENCH=OFF -DSHARDVEC_ARROW=OFF -DSHARDVEC_VEC0_PATH=/opt/shardvec/vec0.so \
    && cmake --build /build --target shardvec \
    && install -m 0755 /build/shardvec /opt/shardvec/shardvec

FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      ca-certificates libsqlite3-0 libcurl4 libssl3 libpugixml1v5 libfmt9 libspdlog1.10 libxxhash0 libzstd1 \
      libpq5 libcpp-httplib0.11 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /home/shardvec shardvec \
    && install -d -o shardvec -g shardvec -m 0700 /cache
COPY --from=build /opt/shardvec /opt/shardvec
USER shardvec
ENV SHARDVEC_LOG_FORMAT=json SHARDVEC_VEC0_PATH=/opt/shardvec/vec0.so
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/v1/health || exit 1
ENTRYPOINT ["/opt/shardvec/shardvec", "serve", "--host", "0.0.0.0", "--port", "8080", "--cache-dir", "/cache"]
