# Build: docker build -t cairn .   Run: see docker-compose.yml (it needs a .env:
#   docker run --rm --entrypoint cairn cairn gen-env > .env).
# Inside the container the admin listener binds 0.0.0.0:9001 so that Prometheus
# can scrape it over the compose network; publish it on 127.0.0.1 only
# (docker-compose.yml does). No credentials are baked in: give
# CAIRN_ACCESS_KEY/CAIRN_SECRET_KEY, or read the generated ones from the log.
#
# Works with the classic builder and BuildKit alike (no cache mounts): the
# dependencies are compiled in a layer of their own, rebuilt only when a
# Cargo.toml or Cargo.lock changes.

# Only the manifests and Cargo.lock, with an empty stub for every target they
# name (src/lib.rs, src/main.rs, benches/…, build scripts), and .stubs listing the stubs. The
# build stage copies this by content, so a change to a source file keeps the
# dependency layer below cached.
FROM rust:1.95-bookworm AS manifests
WORKDIR /src
COPY . .
RUN set -eu; \
    find . -type f ! -name Cargo.toml ! -name Cargo.lock -delete; \
    for manifest in $(find . -name Cargo.toml | sort); do \
      dir=$(dirname "$manifest"); \
      { [ "$dir" = . ] || echo src/lib.rs; \
        awk 'function flush() { \
               if (kind != "") { if (path == "") path = (kind == "lib" ? "src/lib.rs" : dirs[kind] "/" name ".rs"); print path } \
               kind = ""; name = ""; path = "" } \
             BEGIN { dirs["bin"] = "src/bin"; dirs["bench"] = "benches"; dirs["example"] = "examples"; dirs["test"] = "tests" } \
             /^\[/ { flush() } \
             /^\[lib\]/ { kind = "lib" } \
             /^\[\[(bin|bench|example|test)\]\]/ { kind = $0; sub(/^\[\[/, "", kind); sub(/\]\].*/, "", kind) } \
             kind == "" && /^build *= *"/ { build = $0; sub(/^build *= *"/, "", build); sub(/".*/, "", build); print build } \
             kind != "" && /^name *=/ { name = $0; sub(/^name *= *"/, "", name); sub(/".*/, "", name) } \
             kind != "" && /^path *=/ { path = $0; sub(/^path *= *"/, "", path); sub(/".*/, "", path) } \
             END { flush() }' "$manifest"; \
      } | sort -u | while read -r target; do \
        mkdir -p "$(dirname "$dir/$target")"; \
        case "$target" in src/lib.rs) : > "$dir/$target" ;; *) echo 'fn main() {}' > "$dir/$target" ;; esac; \
        echo "$dir/$target" >> .stubs; \
      done; \
    done

FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends clang libclang-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY --from=manifests /src ./
# Every dependency (RocksDB's C++ above all), against the stubs.
RUN cargo build --release --locked --bin cairn && xargs rm -f < .stubs && rm .stubs
COPY . .
# COPY keeps the files' modification times, which may be older than the stub
# build above: touch the sources so that cargo rebuilds the workspace's crates.
RUN find . -path ./target -prune -o -name '*.rs' -exec touch {} + \
    && cargo build --release --locked --bin cairn

FROM debian:bookworm-slim
RUN useradd --system --home /data cairn && mkdir -p /data && chown cairn /data
# The release profile (Cargo.toml) keeps line tables for Cairn's own code only
# (file:line in backtraces) and no debug info for dependencies: nothing left
# to strip worth the backtraces it would cost.
COPY --from=build /src/target/release/cairn /usr/local/bin/cairn
USER cairn
VOLUME /data
EXPOSE 9000 9001
# `cairn admin health` asks the admin listener's /health/ready: exit 0 when
# ready (no shell needed; the slim image has no curl).
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["cairn", "admin", "--admin-url", "http://127.0.0.1:9001", "health"]
ENTRYPOINT ["cairn", "server", "--data-dir", "/data", "--listen", "0.0.0.0:9000", "--admin-listen", "0.0.0.0:9001"]
