# syntax=docker/dockerfile:1
# One static binary in a distroless image (no shell, non-root).
FROM golang:1.27-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/votewatch ./cmd/votewatch
# Where `votewatch certs` writes in compose: a named volume mounted there
# starts with this directory's owner, so the non-root user can write it.
RUN mkdir -p /out/tls && chmod 700 /out/tls

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/votewatch /votewatch
COPY --from=build --chown=nonroot:nonroot /out/tls /tls
USER nonroot:nonroot
EXPOSE 8080 9100
ENTRYPOINT ["/votewatch"]
CMD ["--help"]
