# Build: docker build -t cairn .   Run: see docker-compose.yml (it needs a .env:
#   docker run --rm --entrypoint cairn cairn gen-env > .env).
# Inside the container the admin listener binds 0.0.0.0:9001 so that Prometheus
# can scrape it over the compose network; publish it on 127.0.0.1 only
# (docker-compose.yml does). No credentials are baked in: give
# CAIRN_ACCESS_KEY/CAIRN_SECRET_KEY, or read the generated ones from the log.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends clang libclang-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --bin cairn

FROM debian:bookworm-slim
RUN useradd --system --home /data cairn && mkdir -p /data && chown cairn /data
COPY --from=build /src/target/release/cairn /usr/local/bin/cairn
USER cairn
VOLUME /data
EXPOSE 9000 9001
ENTRYPOINT ["cairn", "server", "--data-dir", "/data", "--listen", "0.0.0.0:9000", "--admin-listen", "0.0.0.0:9001"]
