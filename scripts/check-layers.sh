#!/bin/sh
# check-layers.sh: fails when a file under src/ includes a header of a layer
# it may not use.  The layers, from the top: cmd (the programs), est (TLS
# front end and EST wire), ra (authentication, policy, requests), ca_plugins
# (CA backends), core (what every layer shares).  Each may include its own
# directory and the ones listed for it below, never one above it or beside
# it; est reaches the backends only through ra.
set -eu
cd "$(dirname "$0")/.."

allowed() {
	case $1 in
	cmd) echo "cmd est ra core" ;;
	est) echo "est ra core" ;;
	ra) echo "ra ca_plugins core" ;;
	ca_plugins) echo "ca_plugins core" ;;
	core) echo "core" ;;
	*) echo "" ;;
	esac
}

bad=0
report=$(mktemp)
trap 'rm -f "$report"' EXIT
for f in $(find src -name '*.[ch]' | sort); do
	layer=$(echo "$f" | cut -d/ -f2)
	ok=$(allowed "$layer")
	if [ -z "$ok" ]; then
		echo "check-layers: $f: directory src/$layer is not a known layer" >&2
		bad=1
		continue
	fi
	grep -n '^#include "' "$f" | while IFS= read -r line; do
		target=$(echo "$line" | sed 's/^[0-9]*:#include "\([^"/]*\)\/.*/\1/')
		case " $ok " in
		*" $target "*) ;;
		*) echo "check-layers: $f:${line%%:*}: $layer may not include" \
			"$(echo "$line" | sed 's/^[0-9]*://') (allowed: $ok)" ;;
		esac
	done
done >"$report"
if [ -s "$report" ]; then
	cat "$report" >&2
	bad=1
fi
[ "$bad" -eq 0 ] && echo "check-layers: every include points down (cmd > est > ra > ca_plugins > core)"
exit "$bad"
