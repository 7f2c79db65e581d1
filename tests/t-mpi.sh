# t-mpi.sh - data-parallel training with MPI (make MPI=1, build-mpi/):
# R ranks x T threads train the model one process with R*T threads
# trains, number for number; checkpoints resume; a failing rank ends
# the job with no model.  Skipped where OpenMPI cannot be installed.
ROOT=$(cd "$TESTS/.." && pwd)
P=$T/mpi; mkdir -p "$P"
if [ -n "${KZ_IN_PACKAGE_BUILD:-}" ]; then
	skip "MPI" "not inside the package build"
elif ! sh "$ROOT/tools/deps.sh" mpi >"$P/deps.log" 2>&1 || ! command -v mpirun >/dev/null; then
	skip "MPI" "OpenMPI not installable: $(tail -1 "$P/deps.log")"
elif ! make -s -C "$ROOT" MPI=1 >"$P/build.log" 2>&1; then
	not_ok "make MPI=1 builds build-mpi/" "$(tail -3 "$P/build.log")"
else
	ok "make MPI=1 builds build-mpi/"
	export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
	MT=$ROOT/build-mpi/bin/kz-train
	run() { np=$1; shift; mpirun --oversubscribe -np "$np" "$MT" "$@"; }
	nums() { kzpy sections-md5 "$1"; }
	F=$T/fx
	[ -f "$F/many.npz" ] || "$PY" "$TESTS/fixtures.py" "$F"
	"$PY" "$TESTS/kzpy.py" make "$P/tr.kz" 12 12 4 $(seq 0 599 | awk '{ print $1 % 4 }' | tr '\n' ' ') 2>/dev/null ||
	    kz-unpack "$F/many.npz" >"$P/tr.kz"
	A=cnn:conv4k3p1,bn,relu,maxpool2,drop0.2,dense16,relu
	O="-a $A -b 50 --seed 3 --opt nesterov --lr 0.05 --augment shift=1,rotate=5"
	kz-train -q -t 2 $O -e 2 --schedule cosine -o "$P/one2.kzm" "$P/tr.kz"
	run 2 -q -t 1 $O -e 2 --schedule cosine -o "$P/two1.kzm" "$P/tr.kz" 2>"$P/err"
	t_eq "2 ranks x 1 thread = 1 process x 2 threads, number for number" "$(nums "$P/one2.kzm")" "$(nums "$P/two1.kzm" 2>/dev/null)"
	kz-train -q -t 4 $O -e 2 --schedule cosine -o "$P/one4.kzm" "$P/tr.kz"
	run 2 -q -t 2 $O -e 2 --schedule cosine -o "$P/two2.kzm" "$P/tr.kz" 2>>"$P/err"
	t_eq "2 ranks x 2 threads = 1 process x 4 threads" "$(nums "$P/one4.kzm")" "$(nums "$P/two2.kzm" 2>/dev/null)"
	t_eq "... and they differ from 2 threads (the shards matter)" no "$([ "$(nums "$P/one4.kzm")" = "$(nums "$P/one2.kzm")" ] && echo yes || echo no)"
	# --sam moves every rank's weights by the whole batch's gradient.
	kz-train -q -t 2 $O --sam 0.05 -e 2 -o "$P/sam1.kzm" "$P/tr.kz"
	run 2 -q -t 1 $O --sam 0.05 -e 2 -o "$P/sam2.kzm" "$P/tr.kz" 2>>"$P/err"
	t_eq "--sam: 2 ranks x 1 thread = 1 process x 2 threads" "$(nums "$P/sam1.kzm")" "$(nums "$P/sam2.kzm" 2>/dev/null)"
	# Checkpoint after one epoch, resume to two (a constant rate, so
	# that the first epoch is the same either way): rank 0 writes the
	# checkpoint, every rank reads it.
	kz-train -q -t 2 $O -e 2 -o "$P/const.kzm" "$P/tr.kz"
	run 2 -q -t 1 $O -e 1 --checkpoint "$P/ck.kzm" -o "$P/e1.kzm" "$P/tr.kz" 2>>"$P/err"
	run 2 -q -t 1 $O -e 2 --resume "$P/ck.kzm" -o "$P/res.kzm" "$P/tr.kz" 2>>"$P/err"
	t_eq "2 ranks, checkpointed and resumed = 1 process straight through" "$(nums "$P/const.kzm")" "$(nums "$P/res.kzm" 2>/dev/null)"
	t_eq "only rank 0 writes: no other file" "ck.kzm const.kzm e1.kzm err one2.kzm one4.kzm res.kzm sam1.kzm sam2.kzm tr.kz two1.kzm two2.kzm" \
	    "$(ls "$P" | grep -v '\.log$' | tr '\n' ' ' | sed 's/ $//')"
	# A rank that fails ends the job, with its message and no model.
	head -c 1000 "$P/tr.kz" >"$P/cut.kz"
	run 2 -q -t 1 $O -o "$P/bad.kzm" "$P/cut.kz" >"$P/out" 2>"$P/bad.err"
	st=$?
	t_eq "a failing rank fails the job, with its message, and no model" "1 1 no" \
	    "$([ $st -ne 0 ] && echo 1 || echo 0) $(grep -c -m 1 'kz-train: .*cut.kz' "$P/bad.err") $([ -e "$P/bad.kzm" ] && echo yes || echo no)"
fi
