# Mooring's container image: `docker build -t mooring .` (the base images come from
# Docker Hub). Run it with the host's Docker socket, and the data directory (and any
# `dir:` source) mounted at the same path as on the host — Compose bind mounts point
# into them and Docker on the host resolves them (README, "Install"):
#   docker run -d --name mooring -p 127.0.0.1:7420:7420 \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v /var/lib/mooring:/var/lib/mooring \
#     -v /etc/mooring/mooring.yaml:/etc/mooring/mooring.yaml:ro mooring
# scripts/image-test.sh builds an image with the same runtime lines (below the
# "runtime" mark) from a root filesystem made locally, and runs the example app with it.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p mooring \
 && strip -o /mooring target/release/mooring

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git subversion mercurial openssh-client tini \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /mooring /usr/bin/mooring
COPY packaging/container.yaml /etc/mooring/mooring.yaml
# runtime
ENV HOME=/var/lib/mooring
WORKDIR /var/lib/mooring
VOLUME /var/lib/mooring
EXPOSE 7420
# tini as PID 1: it passes signals on and reaps the processes the daemon's children
# leave (an ssh master backgrounded for an SFTP copy), which a daemon as PID 1 would not.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/mooring"]
CMD ["serve", "--config", "/etc/mooring/mooring.yaml"]
