#!/usr/bin/env bash
# The test command: installs what is missing, then runs every check (host
# tests, the image build, each in-guest suite under QEMU, the plain boot and
# the netboot) through the `ci` runner. Extra arguments go to the runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
exec cargo run -q -p ci -- test "$@"
