# The altan node image. Two ways to build it, one file:
#
#   scripts/docker-image.sh
#       the usual way, and the only one on a machine without a container registry: builds the
#       release binary on the host (`cargo build --release --locked -p altan-node --bin altan`),
#       stages it as target/docker/altan and runs
#       `docker build --target host --build-arg BASE=<base> -t altan:dev .`.
#       The binary links glibc, libstdc++ and libgcc dynamically, so the base must be Debian
#       bookworm (glibc 2.36) or newer, or the host's own distribution.
#   docker build -t altan:dev .
#       compiles inside docker (the `source` stage, the default target). Needs a registry for
#       the rust and debian images, and BuildKit (docker's default builder since 23.0), which
#       builds only the stages the target needs: the legacy builder builds every stage before
#       the target, the `host` stage among them, and that one needs the staged binary.
#
# BASE is any Debian bookworm root: debian:bookworm-slim from a registry, or the image
# scripts/docker-base.sh makes with debootstrap (altan-base:bookworm).
#
# The image runs as the unprivileged user altan (uid 10001); /data is its data directory and
# /genesis is where the devnet's shared genesis volume is mounted (docker-compose.yml).
ARG BASE=debian:bookworm-slim
ARG RUST_IMAGE=rust:1.95-slim-bookworm

FROM ${BASE} AS runtime
RUN groupadd --system --gid 10001 altan \
 && useradd --system --uid 10001 --gid altan --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin altan \
 && mkdir -p /data /genesis \
 && chown altan:altan /data /genesis
COPY scripts/devnet-node.sh /usr/local/bin/altan-devnet
# Logs go to docker's log driver, not a terminal: no colour codes in them.
ENV ALTAN_HOME=/data NO_COLOR=1
WORKDIR /data
EXPOSE 9944 9615 30333
CMD ["altan", "--help"]

# The binary the host built, staged by scripts/docker-image.sh.
FROM runtime AS host
COPY target/docker/altan /usr/local/bin/altan
# Fails the build when the base lacks a library the binary links against.
RUN altan --version
USER altan

FROM ${RUST_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ make libclang-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Without its debug info: the release profile's line tables are over 500 MB of the binary.
RUN cargo build --release --locked -p altan-node --bin altan \
 && strip --strip-debug -o /usr/local/bin/altan target/release/altan

FROM runtime AS source
COPY --from=build /usr/local/bin/altan /usr/local/bin/altan
RUN altan --version
USER altan
