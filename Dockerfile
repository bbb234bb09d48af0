# Build: docker build -t cairn .   Run: see docker-compose.yml
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
