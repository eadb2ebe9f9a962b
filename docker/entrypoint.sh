#!/bin/sh
# Entrypoint of the edgelb image. With no arguments, or only flags, it runs the controller
# (`edgelb run`); an edgelb command runs as given (`docker run edgelb check --service-name lb`);
# anything else is executed as is (`docker run -it edgelb sh`).
set -e
case "${1:-}" in
  '' | -*) set -- run "$@" ;;
esac
case "$1" in
  run | render | check | status | cert | help)
    # exec: edgelb is PID 1, gets SIGTERM from `docker stop` and stops HAProxy gracefully.
    exec node /opt/edgelb/dist/src/main.js "$@"
    ;;
esac
exec "$@"
