#!/bin/sh
# classify-shards.sh [-S hosts] [-j jobs] MODEL OUTPUT SHARD... - classifies
# each shard with kz-classify through GNU parallel, on the hosts of -S
# (parallel's --sshlogin: "host1,host2", "4/host3"; ":" is this machine,
# the default), and joins the outputs in the shards' order into OUTPUT.
#
# Each shard (a relative path) goes to its host with --transferfile, its
# predictions SHARD.out.kz (SHARD without .kz) come back with --return,
# and --cleanup removes both there.  OUTPUT is their concatenation in
# the order of the arguments: the stream one kz-classify would write,
# record for record.  A shard that fails stops the run (--halt
# now,fail=1): kz-classify's error names it, the exit status is
# non-zero, OUTPUT is not written, and OUTPUT.joblog lists the failed
# shards; RESUME=1 reruns only those (parallel --resume-failed).
set -eu
usage() { echo "usage: classify-shards.sh [-S hosts] [-j jobs] model output shard..." >&2; exit 2; }
HOSTS=: JOBS=
while getopts S:j: o; do
	case $o in
	S) HOSTS=$OPTARG ;;
	j) JOBS=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 3 ] || usage
MODEL=$1 OUT=$2
shift 2
resume=
[ "${RESUME:-0}" = 1 ] && resume=--resume-failed
# shellcheck disable=SC2086
if ! parallel --halt now,fail=1 ${JOBS:+-j "$JOBS"} -S "$HOSTS" --joblog "$OUT.joblog" $resume \
    --transferfile {} --return {.}.out.kz --cleanup \
    kz-classify -m "$MODEL" -o {.}.out.kz {} ::: "$@"; then
	echo "classify-shards.sh: failed:" \
	    "$(awk -F'\t' 'NR > 1 && $7 != 0 { printf " %s", $NF }' "$OUT.joblog" | sed 's/kz-classify -m [^ ]* -o [^ ]* //g')" \
	    "(listed in $OUT.joblog; RESUME=1 reruns them)" >&2
	exit 1
fi
for s; do cat "${s%.kz}.out.kz"; done >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
for s; do rm -f "${s%.kz}.out.kz"; done
