#!/bin/sh
# Runs a Python test with Debian's interpreter, which has python3-grpcio and
# python3-confluent-kafka; another python3 may come first on PATH.
exec /usr/bin/python3 "$@"
