#!/bin/sh
# bench.sh BINDIR - speed figures, each side by side with its peer in one
# run on this machine.  Not a test: nothing here passes or fails.
set -eu
BIN=$(cd "$1" && pwd)
PATH=$BIN:$PATH
D=${KZ_DATA:-../shared/data}
D=$(cd "$D" && pwd)
sh "$(dirname "$0")/../tools/deps.sh" bench
echo "== kz-unpack: KMNIST train+test npz pairs (4 files) vs numpy np.load(...)['arr_0']"
NPZ="$D/kmnist-train-imgs.npz $D/kmnist-train-labels.npz $D/kmnist-test-imgs.npz $D/kmnist-test-labels.npz"
PYLOAD="import numpy as np, sys; [np.load(f)['arr_0'] for f in sys.argv[1:]]"
hyperfine -N -w 2 -r 10 --export-json /tmp/kz-bench-unpack.json \
    -n kz-unpack "kz-unpack -o /dev/null $NPZ" \
    -n numpy "/usr/bin/python3 -c \"$PYLOAD\" $NPZ"
/usr/bin/python3 - "$NPZ" <<'PY'
import json, sys, time
import numpy as np
r = {x["command"]: x["mean"] for x in json.load(open("/tmp/kz-bench-unpack.json"))["results"]}
files = sys.argv[1].split()
best = 1e9
for _ in range(5):
    t = time.perf_counter(); [np.load(f)["arr_0"] for f in files]; best = min(best, time.perf_counter() - t)
print("kz-unpack %.3f s; numpy whole command %.3f s, numpy inside Python (no start-up) best %.3f s"
      % (r["kz-unpack"], r["numpy"], best))
print("ratio kz-unpack / numpy: %.2f (whole command), %.2f (numpy without start-up); target <= 1.0"
      % (r["kz-unpack"] / r["numpy"], r["kz-unpack"] / best))
PY
if [ -f "$D/kkanji.tar.gz" ]; then
	echo "== kz-unpack: Kuzushiji-Kanji kkanji.tar.gz (140,424 PNGs) to a stream; target < 10 s"
	hyperfine -N -w 0 -r 3 -n kanji "kz-unpack -o /dev/null $D/kkanji.tar.gz"
fi
