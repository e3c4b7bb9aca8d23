# hacached image on Debian 12: build stage with the -dev packages, runtime stage with the
# shared libraries hacached links (libcurl is for the client libraries only). `docker build -t
# hacache:0.1.0 .` (the manifests in k8s/ use that tag). Checked without a container engine by
# tests/integration/test_k8s.py: base images, USER = the manifests' runAsUser, ENTRYPOINT,
# EXPOSE = the manifests' ports (peer 7100, API 8080, health 8081), runtime packages.
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libuv1-dev libh2o-dev libprotobuf-c-dev \
      protobuf-c-compiler libsodium-dev libssl-dev libcurl4-openssl-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
    && cmake --build /build -j"$(nproc)" --target hacached \
    && install -D -m 0755 /build/bin/hacached /out/usr/bin/hacached

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      libuv1 libh2o0.13 libprotobuf-c1 libsodium23 libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd -g 10001 hacache && useradd -u 10001 -g 10001 -M -d /var/lib/hacache hacache \
    && install -d -o 10001 -g 10001 /var/lib/hacache
COPY --from=build /out/ /
USER 10001:10001
EXPOSE 7100 8080 8081
ENTRYPOINT ["/usr/bin/hacached"]
