# levee in a small image: built with the workspace's release profile, run
# from a distroless base (glibc, CA roots, no shell) as an unprivileged user.
#
#   docker build -t levee .
#   docker run -p 8080:8080 -v $PWD/levee.toml:/etc/levee/levee.toml:ro levee
#
# The default config (dist/container.toml) listens on 0.0.0.0:8080 and logs
# to stdout and stderr; a config mounted over it must listen on 0.0.0.0 (or
# [::]) to be reached from outside the container. Ports below 1024 need
# --cap-add NET_BIND_SERVICE, or a port mapping to a high one.

# The latest stable Rust: the code needs more than the declared rust-version.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p levee \
    && mkdir -p /out/etc/levee \
    && cp target/release/levee /out/levee \
    && cp dist/container.toml /out/etc/levee/levee.toml

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/levee /usr/bin/levee
COPY --from=build /out/etc/levee /etc/levee
ENV LEVEE_CONFIG=/etc/levee/levee.toml
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/bin/levee"]
CMD ["run"]
