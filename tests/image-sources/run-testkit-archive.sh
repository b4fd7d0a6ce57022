#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Run berth-testkit against the docker-archive driver on a docker save tar of
# the demo image that skopeo writes (the legacy form, whose manifest the
# driver synthesises). Usage: run-testkit-archive.sh TESTKIT MODULE DEMO_LAYOUT
set -eu
testkit=$1 module=$2 demo=$3
command -v skopeo >/dev/null || { echo "skip: skopeo is not installed"; exit 77; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/berth-testkit-archive-XXXXXX")
trap 'rm -rf "$dir"' EXIT
skopeo --insecure-policy copy -q "oci:$demo:latest" "docker-archive:$dir/demo.tar:demo:latest"
BERTH_TESTKIT_IMAGE_LOCATION=$dir/demo.tar "$testkit" "$module"
