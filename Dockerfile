# binderbuild container image for `docker build -t binderbuild .` (`make
# image-docker`). `make image` assembles the same files without pulling any
# base image (tools/mkimage): use it where golang and distroless cannot be
# pulled.
#
# The binary is static (CGO_ENABLED=0) and needs no shell, git or other
# program at run time: git access uses go-git, registries go-containerregistry.
# The runtime image is distroless/static (CA certificates, tzdata, /tmp) with
# an added uid/gid 1000 user, the uid the Helm chart runs the server as.

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so source edits reuse the module download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/binderbuild ./cmd/binderbuild
# The runtime's passwd/group with the binderbuild user added, and its home.
RUN mkdir -p /out/etc /out/home/binderbuild \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nbinderbuild:x:1000:1000:binderbuild:/home/binderbuild:/sbin/nologin\n' > /out/etc/passwd \
 && printf 'root:x:0:\nnobody:x:65534:\nbinderbuild:x:1000:\n' > /out/etc/group

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build --chown=1000:1000 /out/home/binderbuild /home/binderbuild
COPY --from=build /out/binderbuild /binderbuild
ENV HOME=/home/binderbuild
USER 1000:1000
EXPOSE 8585
ENTRYPOINT ["/binderbuild"]
CMD ["serve"]
