# syntax=docker/dockerfile:1
# One image for every Aurora profile:
#   docker build -t aurora .
#   docker run --rm -e AURORA_JWT_SECRET=... aurora chat-service
# The first argument (or AURORA_PROFILE) names a profile from
# /usr/local/share/aurora/config: all-in-one, user-service, chat-service,
# ingest-worker. docs/deployment.md has the whole stack (compose.yaml).

# ---- build: compilers and -dev packages, never shipped ----------------------
FROM debian:bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential cmake ninja-build pkg-config ca-certificates \
        libwebsockets-dev libuv1-dev libhiredis-dev libmongoc-dev libbson-dev libjwt-dev \
        libcrypt-dev libcjson-dev libssl-dev libcurl4-openssl-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY sdk/ sdk/
COPY host/ host/
COPY plugins/ plugins/
COPY samples/ samples/
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr/local \
        -DAURORA_BUILD_TESTS=OFF -DAURORA_BUILD_PYTHON=OFF \
    && cmake --build /build \
    && DESTDIR=/stage cmake --install /build \
    && install -m 0755 samples/deploy/aurora-entrypoint.sh /stage/usr/local/bin/aurora-entrypoint

# ---- runtime: the shared libraries the host and plugins link, nothing else ---
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libwebsockets17 libwebsockets-evlib-uv libuv1 libhiredis0.14 libmongoc-1.0-0 libbson-1.0-0 libjwt0 \
        libcjson1 libssl3 libcurl4 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 aurora \
    && useradd --system --uid 10001 --gid aurora --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin aurora
# The program, its plugins, the profiles and the web client; headers, the
# static SDK library and the CMake/pkg-config files stay in the build stage.
COPY --from=build /stage/usr/local/bin/ /usr/local/bin/
COPY --from=build /stage/usr/local/lib/libaurora_host.so* /usr/local/lib/
COPY --from=build /stage/usr/local/lib/aurora/ /usr/local/lib/aurora/
COPY --from=build /stage/usr/local/share/aurora/ /usr/local/share/aurora/
RUN ldconfig && aurora-host --version

ENV AURORA_HOST=0.0.0.0 \
    AURORA_PORT=8080 \
    AURORA_PLUGIN_PATH=/usr/local/lib/aurora/plugins
USER 10001:10001
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/aurora-entrypoint", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/aurora-entrypoint"]
CMD ["all-in-one"]
