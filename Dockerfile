# syntax=docker/dockerfile:1
# dcvaas as a container: a static binary (pure-Go SQLite, no cgo) on a
# distroless base, running as a non-root user.
#
#   docker build -t dcvaas .
#   docker run -p 8080:8080 -p 53:53/udp -p 53:53/tcp \
#     -e DCVAAS_ENCRYPTION_KEY=$(openssl rand -hex 32) -v dcvaas-data:/data dcvaas
#
# deploy/compose.yaml runs two nodes on one PostgreSQL.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/dcvaas/dcvaas.Version=${VERSION}" -o /out/dcvaas ./cmd/dcvaas \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dcvaas /usr/local/bin/dcvaas
# The data directory belongs to the image's non-root user (65532), so the
# SQLite database and its generated key file can be created in a volume.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
# Listen on every address inside the container. Port 53 needs no capability
# here: Docker lets unprivileged processes bind low ports in a container's
# own network namespace (net.ipv4.ip_unprivileged_port_start=0).
ENV DCVAAS_HTTP_ADDR=0.0.0.0:8080 \
    DCVAAS_DNS_ADDR=0.0.0.0:53 \
    DCVAAS_DATABASE_URL=/data/dcvaas.db \
    DCVAAS_LOG_FORMAT=json
EXPOSE 8080/tcp 53/udp 53/tcp
VOLUME ["/data"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/dcvaas", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/dcvaas"]
CMD ["serve"]
