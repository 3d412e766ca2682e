#!/usr/bin/env bash
# Private matching N x N between two sovereign nodes (issue 14) through the
# real path: three `parley serve` (alpha's node A, bravo's node B, escrow
# node C; SQLite, or B on PostgreSQL with DB_B=postgres://...) and two
# `parley match` client processes, each against its own node, loopback
# only, 10% overlap; then, unless ONE=0, the same N on one `parley serve`
# for comparison. Prints each process's wall time, CPU seconds and peak
# RSS, and the load average. Run by hand from the repository root, never
# in CI:
#
#	scripts/bench-match-nodes.sh            # N = 1,000,000
#	N=300000 DB_B=postgres://postgres@127.0.0.1:5432/benchb?sslmode=disable scripts/bench-match-nodes.sh
#
# PARLEY=path uses a built binary instead of building one.
set -euo pipefail
N=${N:-1000000}
PORT=${PORT:-18481}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
if [ -n "${PARLEY:-}" ]; then
	P=$PARLEY
else
	go build -o "$work/parley" ./cmd/parley
	P=$work/parley
fi
A=127.0.0.1:$PORT B=127.0.0.1:$((PORT + 1)) C=127.0.0.1:$((PORT + 2)) S=127.0.0.1:$((PORT + 3))
cd "$work"

serve() { # name addr [db flags...]
	local name=$1 addr=$2
	shift 2
	"$P" serve --data "$work/$name" "$@" --listen "$addr" --public-url "http://$addr" --log-level warn >"$work/$name.out" 2>"$work/$name.log" &
	pids+=($!)
	eval "pid_$name=$!"
	for _ in $(seq 100); do curl -sf "http://$addr/healthz" >/dev/null && return; sleep 0.1; done
	echo "$name did not start" >&2
	cat "$work/$name.log" >&2
	exit 1
}
key() { "$P" node id --data "$work/$1" "${@:2}" | tail -1 | cut -d' ' -f2; }
cpu() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; } # utime+stime at 100 Hz
hwm() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; }
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)["'"$1"'"])'; }

overlap=$((N / 10))
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "x%d@example.org\n", i }' >alpha.txt
awk -v lo=$((N - overlap)) -v hi=$((2 * N - overlap)) 'BEGIN { for (i = lo; i < hi; i++) printf "x%d@example.org\n", i }' >bravo.txt

# match LABEL AGREEMENT ALPHA_CONFIG BRAVO_CONFIG SERVER_PIDS...
match() {
	local label=$1 ag=$2 ca=$3 cb=$4
	shift 4
	local s0=() p
	for p in "$@"; do s0+=("$(cpu "$p")"); done
	echo "== $label: N=$N; load before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs"
	local start end a
	start=$(date +%s.%N)
	PARLEY_CONFIG=$ca /usr/bin/time -f 'alpha: wall %e s, CPU %U+%S s, peak RSS %M KiB' "$P" match --agreement "$ag" --list alpha.txt --quiet >alpha.out 2>alpha.time &
	a=$!
	PARLEY_CONFIG=$cb /usr/bin/time -f 'bravo: wall %e s, CPU %U+%S s, peak RSS %M KiB' \
		"$P" match --agreement "$ag" --join --list bravo.txt --quiet >bravo.out 2>bravo.time
	wait "$a"
	end=$(date +%s.%N)
	echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
	tail -1 alpha.time
	tail -1 bravo.time
	local i=0
	for p in "$@"; do
		echo "server $p: CPU $(echo "$(cpu "$p") - ${s0[$i]}" | bc) s during the match, peak RSS $(hwm "$p") KiB (whole life)"
		i=$((i + 1))
	done
	echo "both sides done: wall $(echo "$end - $start" | bc) s"
	grep -h 'matched' alpha.out bravo.out
}

# Two nodes and an escrow node.
dbb=()
if [ -n "${DB_B:-}" ]; then
	dbb=(--db "$DB_B")
	"$P" migrate --db "$DB_B" >/dev/null
fi
serve nodea "$A"
serve nodeb "$B" "${dbb[@]}"
serve nodec "$C"
ka=$(key nodea) kb=$(key nodeb "${dbb[@]}") kc=$(key nodec)
"$P" peer add --data nodea bravo "http://$B" "$kb" >/dev/null
"$P" peer add --data nodea charlie "http://$C" "$kc" >/dev/null
"$P" peer add --data nodeb "${dbb[@]}" alpha "http://$A" "$ka" >/dev/null
"$P" peer add --data nodeb "${dbb[@]}" charlie "http://$C" "$kc" >/dev/null
"$P" peer add --data nodec alpha "http://$A" "$ka" >/dev/null
"$P" peer add --data nodec bravo "http://$B" "$kb" >/dev/null
ta=$("$P" party add --data nodea alpha | tail -1)
tb=$("$P" party add --data nodeb "${dbb[@]}" bravo | tail -1)
PARLEY_CONFIG=$work/alpha.json "$P" login --server "http://$A" --token "$ta" >/dev/null
PARLEY_CONFIG=$work/alpha.json "$P" keygen --out alpha-keys.pem >/dev/null
PARLEY_CONFIG=$work/bravo.json "$P" login --server "http://$B" --token "$tb" >/dev/null
PARLEY_CONFIG=$work/bravo.json "$P" keygen --out bravo-keys.pem >/dev/null
ag=$(PARLEY_CONFIG=$work/alpha.json "$P" agreement propose --with bravo@bravo --types indicator --notice 0s \
	--escrow-node "$kc" --match-cap "$N" --json | json id)
for _ in $(seq 200); do
	h=$(PARLEY_CONFIG=$work/bravo.json "$P" agreement show "$ag" --json 2>/dev/null | json awaiting_document_hash 2>/dev/null) && [ -n "$h" ] && break
	sleep 0.1
done
PARLEY_CONFIG=$work/bravo.json "$P" agreement sign "$ag" --version 1 --hash "$h" >/dev/null 2>&1
for _ in $(seq 200); do
	PARLEY_CONFIG=$work/alpha.json "$P" agreement show "$ag" | grep -q 'phase: active' && break
	sleep 0.1
done
match "two nodes + escrow node (A, B$([ -n "${DB_B:-}" ] && echo ' on PostgreSQL'), C)" "$ag" "$work/alpha.json" "$work/bravo.json" "$pid_nodea" "$pid_nodeb" "$pid_nodec"
grep -h INSTR nodea.log nodeb.log 2>/dev/null | sed 's/^/  /' || true

[ "${ONE:-1}" = 0 ] && exit 0
# The same on one server.
serve one "$S"
ta=$("$P" party add --data one alpha | tail -1)
tb=$("$P" party add --data one bravo | tail -1)
PARLEY_CONFIG=$work/one-a.json "$P" login --server "http://$S" --token "$ta" >/dev/null
PARLEY_CONFIG=$work/one-a.json "$P" keygen --out one-a-keys.pem >/dev/null
PARLEY_CONFIG=$work/one-b.json "$P" login --server "http://$S" --token "$tb" >/dev/null
PARLEY_CONFIG=$work/one-b.json "$P" keygen --out one-b-keys.pem >/dev/null
ag=$(PARLEY_CONFIG=$work/one-a.json "$P" agreement propose --with bravo --types indicator --notice 0s --match-cap "$N" --json | json id)
h=$(PARLEY_CONFIG=$work/one-b.json "$P" agreement show "$ag" --json | json awaiting_document_hash)
PARLEY_CONFIG=$work/one-b.json "$P" agreement sign "$ag" --version 1 --hash "$h" >/dev/null 2>&1
match "one server" "$ag" "$work/one-a.json" "$work/one-b.json" "$pid_one"
grep -h INSTR one.log 2>/dev/null | sed 's/^/  /' || true
