# t-scale.sh - shards classified apart and joined give one process's
# bytes: through GNU parallel on this machine (examples/scale's
# classify-shards.sh), through the Slurm array's script run task by
# task, and for any -t and -b.
S=$T/scale; mkdir -p "$S"
X=$TESTS/../examples/scale
M=$TESTS/../models/kmnist.kzm
F=$T/fx
[ -f "$F/many.npz" ] || "$PY" "$TESTS/fixtures.py" "$F"
kz-unpack -o "$S/all.kz" "$F/many.npz"	# 3000 records of 28x28
(cd "$S" && kz-split -n 5 -o shard all.kz)
t_eq "kz-split -n 5: shards start at multiples of 32 records" "576 608 608 608 600" \
    "$(for i in 0 1 2 3 4; do info records "$S/shard.$i.kz"; done | tr '\n' ' ' | sed 's/ $//')"
# The shipped model as it reads (three networks, ten views) on the first
# shard: 576 records are a batch of 320 and one of 256.
t_eq "kz-classify: the same bytes with one thread and batches of 300 (rounded to 320)" \
    "$(kz-classify -m "$M" -t 2 "$S/shard.0.kz" | md5sum)" \
    "$(kz-classify -m "$M" -t 1 -b 300 "$S/shard.0.kz" | md5sum)"
# The shards' joins need only some network: its first, one view (a
# thirtieth of the shipped model's work).
kz-model -x 1 -s shift=0 -s zoom=0 -s rotate=0 -o "$S/one.kzm" "$M"
M=$S/one.kzm
kz-classify -m "$M" -t 2 -o "$S/one.kz" "$S/all.kz"
one=$(md5sum <"$S/one.kz")
if command -v parallel >/dev/null 2>&1; then
	(cd "$S" && sh "$X/classify-shards.sh" -j 2 "$M" par.kz shard.0.kz shard.1.kz shard.2.kz shard.3.kz shard.4.kz) 2>"$S/par.err"
	t_eq "GNU parallel: shards joined = one process, byte for byte" "$one" "$(kz-norm -p keep "$S/par.kz" | md5sum)"
	t_eq "GNU parallel: the shards' outputs are cleaned up" "" "$(ls "$S"/*.out.kz 2>/dev/null)"
	# A damaged shard: the run fails, names it, writes no output.
	head -c 5000 "$S/shard.3.kz" >"$S/bad.3.kz"
	(cd "$S" && sh "$X/classify-shards.sh" -j 2 "$M" bad.kz shard.0.kz shard.1.kz shard.2.kz bad.3.kz shard.4.kz) 2>"$S/bad.err"
	st=$?
	t_eq "GNU parallel: a failed shard fails the run, named, with no output" "1 1 1 no" \
	    "$st $(grep -c 'kz-classify: bad.3.kz: ' "$S/bad.err") $(grep -c 'failed: .*bad.3.kz' "$S/bad.err") $([ -e "$S/bad.kz" ] && echo yes || echo no)"
	cp "$S/shard.3.kz" "$S/bad.3.kz"
	(cd "$S" && RESUME=1 sh "$X/classify-shards.sh" -j 2 "$M" bad.kz shard.0.kz shard.1.kz shard.2.kz bad.3.kz shard.4.kz) 2>/dev/null
	t_eq "GNU parallel: RESUME=1 reruns the failed shard and joins" "$one" "$(kz-norm -p keep "$S/bad.kz" 2>/dev/null | md5sum)"
else
	skip "GNU parallel" "parallel is not installed (tools/deps.sh installs it)"
fi
(cd "$S" && for i in 0 1 2 3 4; do
	PATH=$PATH SLURM_ARRAY_TASK_ID=$i SHARDS=shard DIGITS=1 MODEL="$M" sh "$X/classify.sbatch" || exit 1
done && sh "$X/join.sh" shard 5 slurm.kz)
t_eq "Slurm array script, task by task, joined = one process" "$one" "$(kz-norm -p keep "$S/slurm.kz" | md5sum)"
rm -f "$S/shard.2.out.kz"
sh "$X/join.sh" "$S/shard" 5 "$S/j.kz" 2>"$S/join.err"
t_eq "join.sh: a missing output is named, and nothing written" "1 no" \
    "$(grep -c 'no output for shard(s) 2: rerun them (sbatch --array=2)' "$S/join.err") $([ -e "$S/j.kz" ] && echo yes || echo no)"
