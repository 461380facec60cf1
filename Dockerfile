# The edgetrack binary on Debian: the same binary and config path as
# `make install` and its systemd units (/usr/local/bin/edgetrack,
# /etc/edgetrack/edgetrack.yaml). No container engine runs on the machines
# this project is tested on: the image is kept minimal and is not built in CI.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN make build VERSION=$VERSION COMMIT=$COMMIT

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
  && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/bin/edgetrack /usr/local/bin/edgetrack
COPY edgetrack.example.yaml /etc/edgetrack/edgetrack.yaml
# Data under /var/lib/edgetrack-{edge,aggregator}, as with the systemd units.
ENV EDGETRACK_EDGE_DATA_DIR=/var/lib/edgetrack-edge \
    EDGETRACK_AGGREGATOR_DATA_DIR=/var/lib/edgetrack-aggregator
RUN mkdir -p /var/lib/edgetrack-edge /var/lib/edgetrack-aggregator \
  && chown 65532:65532 /var/lib/edgetrack-edge /var/lib/edgetrack-aggregator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/edgetrack"]
CMD ["edge", "--config", "/etc/edgetrack/edgetrack.yaml"]
