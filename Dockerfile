# The mlctl image: the built-in model server (`mlctl serve-model`) that `mlctl render`
# deploys for ONNX models, and the rest of the CLI. Published as ghcr.io/mlctl/mlctl:<version>;
# `mlctl render --server-image IMAGE` points the rendered manifests at another build.
#
#   docker build -t ghcr.io/mlctl/mlctl:0.1.0 .
#   docker run --rm -p 8080:8080 -v "$PWD/model:/models:ro" ghcr.io/mlctl/mlctl:0.1.0 \
#     serve-model --model /models/model.onnx --name quickstart --port 8080

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and build artifacts between builds; the binary is copied
# out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p mlctl --bin mlctl \
    && cp target/release/mlctl /usr/local/bin/mlctl

# glibc and libgcc only (no shell, no package manager), running as uid/gid 65532, the user
# every pod mlctl renders runs as.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.source="https://github.com/mlctl/mlctl" \
      org.opencontainers.image.description="mlctl: run, render, check and plan ML workloads; built-in model server" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /usr/local/bin/mlctl /usr/local/bin/mlctl
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/mlctl"]
CMD ["--help"]
