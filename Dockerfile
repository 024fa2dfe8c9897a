# presenced in a container: a static binary on distroless, run as a non-root
# user. Build with `docker build -t presenced .`; docker-compose.yml uses it.
#
# The image holds nothing but the binary (no shell, no package manager, no
# CA bundle beyond distroless's own). Configure it with PRESENCED_*
# variables (README.md, docs/configuration.md) or a TOML file named by
# PRESENCED_CONFIG that you mount.

# Build stage: the Go toolchain presenced is developed with (go.mod: go 1.26).
FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static (no cgo), reproducible paths, no symbol table or DWARF.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/presenced ./cmd/presenced

# Final stage: distroless static, whose "nonroot" variant runs as uid/gid
# 65532. USER is numeric so that an orchestrator can check runAsNonRoot.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/presenced /usr/local/bin/presenced
USER 65532:65532
# In a container, loopback (presenced's default) is unreachable from
# outside: listen on every interface. The API is open unless JWT keys are
# configured (PRESENCED_JWT_KEYS or PRESENCED_JWKS): publish port 8080 only
# where that is intended. Both can be overridden at run time.
ENV PRESENCED_HTTP=0.0.0.0:8080 \
    PRESENCED_METRICS=0.0.0.0:9464
# 8080: REST, WebSocket stream, dashboard, /healthz and /readyz.
# 9464: Prometheus /metrics.
EXPOSE 8080 9464
# No HEALTHCHECK: Docker runs a HEALTHCHECK command inside the container,
# and distroless has no shell, curl or wget to run one with (presenced has
# no health-check subcommand either). Probe from outside instead:
# GET /healthz (alive) and GET /readyz (XMPP link up and store writable) on
# port 8080, e.g. as Kubernetes liveness/readiness probes, or watch the
# metrics (deploy/prometheus/alerts.yml). docker-compose.yml therefore has
# no health check for presenced.
ENTRYPOINT ["/usr/local/bin/presenced"]
