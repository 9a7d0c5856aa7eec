# Multi-stage build: compile with the full toolchain, run on a slim image as a non-root user.
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked && strip target/release/vicinity

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/vicinity vicinity \
    && mkdir -p /var/lib/vicinity/keys \
    && chown -R vicinity:vicinity /var/lib/vicinity
COPY --from=build /src/target/release/vicinity /usr/local/bin/vicinity
USER vicinity
WORKDIR /var/lib/vicinity
# The embedded database and generated key live here; mount a volume to keep them.
VOLUME ["/var/lib/vicinity"]
# GLIBC_TUNABLES: malloc backs large blocks with transparent huge pages (where the kernel
# allows it on request): the in-memory read model is read at random, and with 4 KiB pages
# most lookups also miss the TLB (docs/benchmarks.md).
ENV VICINITY_BIND=0.0.0.0:8080 \
    VICINITY_DATA_DIR=/var/lib/vicinity \
    VICINITY_LOG_FORMAT=json \
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1
EXPOSE 8080
ENTRYPOINT ["vicinity"]
CMD ["serve"]
