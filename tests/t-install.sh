# t-install.sh - make install and uninstall into a staging directory,
# the installed programs finding their model, --version, the Debian
# changelog's version, and bash completion against the man pages.
ROOT=$(cd "$TESTS/.." && pwd)
O=$(dirname "$BIN")
VERSION=$(sed -n 's/^VERSION = //p' "$ROOT/Makefile")
PROGS="kz-unpack kz-info kz-label kz-show kz-split kz-train kz-classify kz-eval kz-norm kz-model kz-similar"

# --version: "kz VERSION" and status 0, whatever else is on the line.
for p in $PROGS; do
	out=$($p --version 2>&1); st=$?
	t_eq "$p --version prints the Makefile's version" "kz $VERSION/0" "$out/$st"
	out=$($p -q --bogus -V nonexistent-file 2>&1); st=$?
	t_eq "$p -V ignores the other arguments" "kz $VERSION/0" "$out/$st"
done
t_eq "an unknown option still prints the usage and exits 2" "2 usage" \
    "$(kz-train --bogus >/dev/null 2>"$T/err"; echo $?) $(grep -o '^usage' "$T/err")"
t_eq "-V after -- is a file name" "1" "$(kz-info -- -V >/dev/null 2>&1; echo $?)"
t_eq "debian/changelog has the Makefile's version" "$VERSION" \
    "$(sed -n '1s/^kz (\([^)]*\)).*/\1/p' "$ROOT/debian/changelog")"

# Install into a staging directory (as a package build does): the
# programs there find the model installed beside them, not the one in
# the source tree nor the share directory compiled in.
if make -s -C "$ROOT" O="$O" DESTDIR="$T/root" install >"$T/inst.log" 2>&1; then
	ok "make install DESTDIR=..."
	# Under PREFIX, whatever make was given (a package build: /usr).
	P=$(dirname "$(dirname "$(find "$T/root" -name kz-classify -type f)")")
	kzpy make "$T/few.kz" 28 28 10 0 1 2 3 4 5 6 7 8 9
	KZ_MODEL="$ROOT/models/kmnist.kzm" kz-classify "$T/few.kz" >"$T/want.kz"
	(cd / && env -u KZ_MODEL PATH=/usr/bin:/bin "$P/bin/kz-classify" "$T/few.kz" >"$T/got.kz" 2>"$T/err")
	t_eq "installed kz-classify, no -m: the installed model's predictions" "$(md5sum <"$T/want.kz")" "$(md5sum <"$T/got.kz")"
	t_eq "... read from beside it" "" "$(cat "$T/err")"
	t_eq "installed man pages carry the version in their footer" ".Os kz $VERSION" \
	    "$(sed -n '/^\.Os/p' "$P/share/man/man1/kz-train.1")"
	t_eq "installed: every program, man page, model, completion" \
	    "11 14 3 12" "$(ls "$P/bin" | wc -l) $(ls "$P"/share/man/man*/* | wc -l) $(ls "$P/share/kz" | wc -l) $(ls "$P/share/bash-completion/completions" | wc -l)"
	echo mine >"$P/share/kz/mine.kzm"
	make -s -C "$ROOT" O="$O" DESTDIR="$T/root" uninstall >"$T/inst.log" 2>&1
	t_eq "make uninstall removes what install put there, and only that" "$P/share/kz/mine.kzm" \
	    "$(find "$T/root" -type f -o -type l)"
else
	not_ok "make install DESTDIR=..." "$(tail -3 "$T/inst.log")"
fi

# Completion: the options completed for each program are those of its
# man page's SYNOPSIS (".Op Fl Ccds" is four).
if command -v bash >/dev/null; then
	for p in $PROGS; do
		want=$(sed -n '/^\.Sh SYNOPSIS/,/^\.Sh /p' "$ROOT/man/$p.1" |
		    grep -oE 'Fl [-A-Za-z][-A-Za-z]*' | sed 's/^Fl //' | while read -r o; do
			case $o in
			-*) printf -- '-%s\n' "$o" ;;
			*) printf '%s\n' "$o" | fold -w1 | sed 's/^/-/' ;;
			esac
		done | sort -u | tr '\n' ' ')
		got=$(bash -c '. "$1"; COMP_WORDS=("$2" -); COMP_CWORD=1; _kz "$2" - "$2"; printf "%s\n" "${COMPREPLY[@]}"' \
		    sh "$ROOT/completion/kz.bash" "$p" | sort -u | tr '\n' ' ')
		t_eq "bash completion of $p: the options of its man page" "$want" "$got"
	done
	got=$(bash -c '. "$1"; COMP_WORDS=(kz-train --opt ""); COMP_CWORD=2; _kz kz-train "" --opt; echo "${COMPREPLY[*]}"' sh "$ROOT/completion/kz.bash")
	t_eq "bash completion of kz-train --opt: its words" "sgd nesterov adam adadelta" "$got"
	got=$(bash -c '. "$1"; COMP_WORDS=(kz-classify -m km); COMP_CWORD=2; _kz kz-classify km -m; echo "${COMPREPLY[*]}"' sh "$ROOT/completion/kz.bash")
	t_eq "bash completion of kz-classify -m: model names" "kmnist" "$got"
else
	skip "bash completion" "no bash"
fi
