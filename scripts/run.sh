#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh) and starts corral on the quickstart config:
#   listener :10000 (direct response on /direct, proxied to :10001 otherwise), admin :9901.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/corral -c examples/quickstart.yaml "$@"
