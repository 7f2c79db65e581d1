#!/bin/sh
# deps.sh [bench] - installs the Debian packages kz needs that are missing
# (apt-get, as root or through sudo).  With "bench", also the peers that
# `make bench` measures against; with "hardening", what `make fuzz` and
# `make valgrind` need; with "deb", what `make deb` needs; with "mpi",
# OpenMPI for `make MPI=1`.
set -eu
PKGS="gcc make pkg-config zlib1g-dev libdeflate-dev libpng-dev libjpeg62-turbo-dev libnetpbm-dev libopenblas-dev bc
mandoc python3 gzip tar dataset-fashion-mnist bsdutils parallel"
if [ "${1:-}" = bench ]; then
	# Node.js runs ONNX Runtime, the inference peer (onnxruntime-node
	# from the npm registry); npm ships inside some nodejs packages
	# (NodeSource's) and is a package of its own in Debian's.
	PKGS="$PKGS python3-numpy python3-sklearn python3-torch hyperfine nodejs"
	command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
fi
if [ "${1:-}" = mpi ]; then
	PKGS="$PKGS openmpi-bin libopenmpi-dev"
fi
if [ "${1:-}" = deb ]; then
	PKGS="$PKGS debhelper dpkg-dev fakeroot lintian"
fi
if [ "${1:-}" = hardening ]; then
	PKGS="$PKGS clang libclang-rt-14-dev valgrind"
fi
missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
	    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps.sh: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
