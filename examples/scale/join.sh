#!/bin/sh
# join.sh PREFIX N OUTPUT - joins PREFIX.i.out.kz, i = 0..N-1 (zero-padded
# as kz-split -n names them), in order, into OUTPUT; names every shard
# whose output is missing, and writes nothing then.
set -eu
[ $# -eq 3 ] || { echo "usage: join.sh prefix shards output" >&2; exit 2; }
P=$1 N=$2 OUT=$3
last=$((N - 1))
digits=${#last}	# kz-split -n pads to the digits of the last number
missing=
i=0
while [ $i -lt "$N" ]; do
	f=$P.$(printf "%0${digits}d" $i).out.kz
	[ -f "$f" ] || missing="$missing $i"
	i=$((i + 1))
done
if [ -n "$missing" ]; then
	echo "join.sh: no output for shard(s)$missing: rerun them (sbatch --array=$(echo $missing | tr ' ' ,))" >&2
	exit 1
fi
i=0
while [ $i -lt "$N" ]; do
	cat "$P.$(printf "%0${digits}d" $i).out.kz"
	i=$((i + 1))
done >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
