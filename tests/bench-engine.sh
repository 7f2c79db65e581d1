#!/bin/sh
# bench-engine.sh BINDIR REV - this build's engine against git revision
# REV's, built here in a temporary worktree: training and inference of
# the Keras simple CNN, and training of the ResNet-preact-20, each side
# three times, alternating, medians compared (bench-pair.sh).  Not a
# test.
set -eu
BIN=$(cd "$1" && pwd)
REV=$2
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=$(mktemp -d "${TMPDIR:-/tmp}/kz-bench-engine.XXXXXX")
trap 'git -C "$TOP" worktree remove --force "$B/base" 2>/dev/null; rm -rf "$B"' EXIT
git -C "$TOP" worktree add -q --detach "$B/base" "$REV"
make -s -C "$B/base" all >/dev/null
BASE=$B/base/build/bin
sh "$TOP/tests/bench-pair.sh" "$REV" "$BASE" new "$BIN"
