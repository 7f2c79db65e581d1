# bash completion for the kz programs (kz-unpack, kz-norm, kz-train,
# kz-classify, kz-label, ...).  Options come from each program's own
# usage message, so that they never drift from the program; -m also
# completes the names of the models kz-classify -L lists.

# _kz_usage PROGRAM: the usage message PROGRAM prints for a bad option.
_kz_usage()
{
	"$1" -\? 2>&1 | sed -n '/usage:/,$p'
}

# _kz_models: names of the models kz-classify can find by name, as its
# -L lists them (one search order, the program's).
_kz_models()
{
	kz-classify -L 2>/dev/null | awk 'NR > 1 { print $1 }'
}

_kz()
{
	local cur prev usage opts words
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	usage=$(_kz_usage "$1")
	# The choices an option takes when its usage spells them: "--opt
	# sgd|nesterov|adam" or "-p auto|keep|invert".
	if [[ $prev == -* ]]; then
		words=$(grep -oE -- "(^|[][ |])${prev}[ =][a-z0-9]+(\|[a-z0-9]+)+" <<<"$usage" |
		    head -1 | sed 's/.*[ =]//; s/|/ /g')
		if [ -n "$words" ]; then
			COMPREPLY=($(compgen -W "$words" -- "$cur"))
			return
		fi
		if [ "$prev" = -m ]; then
			COMPREPLY=($(compgen -W "$(_kz_models)" -- "$cur"))
			COMPREPLY+=($(compgen -f -- "$cur"))
			return
		fi
	fi
	if [[ $cur == -* ]]; then
		# Every option word of the usage; "-Ccds" stands for four.
		opts=$(grep -oE -- '(^|[][ |])--?[A-Za-z][-A-Za-z]*' <<<"$usage" |
		    sed 's/^[][ |]//' | while read -r o; do
			if [[ $o == --* || ${#o} -eq 2 ]]; then
				printf '%s\n' "$o"
			else
				for ((i = 1; i < ${#o}; i++)); do
					printf -- '-%s\n' "${o:i:1}"
				done
			fi
		done | sort -u)
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		return
	fi
	COMPREPLY=($(compgen -f -- "$cur"))
}

complete -o filenames -F _kz kz-unpack kz-info kz-label kz-show kz-split \
    kz-train kz-classify kz-eval kz-norm kz-model kz-similar
