#!/bin/sh
# `edgelb` on PATH inside the image: `docker exec <container> edgelb status`.
exec node /opt/edgelb/dist/src/main.js "$@"
