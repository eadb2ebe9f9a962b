# A local stand-in for the official `haproxy:2.6-bookworm`, built by scripts/image-test.sh where
# no registry serves it: Debian bookworm's own HAProxy 2.6 package. It gives docker/Dockerfile what
# it takes from the official image: a `haproxy` binary on PATH, the `haproxy` user and group, apt
# working, and the same USER and WORKDIR. (The package's own postinst makes the user, a system uid
# below 1000; the official image's is 99, which Debian's adduser refuses as a system uid.)
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
ARG HAPROXY_VERSION
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends "haproxy=${HAPROXY_VERSION}"; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log /var/cache/debconf/*-old; \
    mkdir -p /usr/local/etc/haproxy; \
    id haproxy; haproxy -v
USER haproxy
WORKDIR /var/lib/haproxy
STOPSIGNAL SIGUSR1
CMD ["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
