#!/usr/bin/env bash
# Private matching N x N (issue 18, item 6) through the real path: one
# `parley serve` (SQLite) and two `parley match` client processes on this
# machine, loopback only, 10% overlap. Prints each process's wall time, CPU
# seconds and peak RSS, and the load average before and after. Run by hand
# from the repository root, never in CI:
#
#	scripts/bench-match.sh            # N = 1,000,000
#	N=100000 scripts/bench-match.sh
set -euo pipefail
N=${N:-1000000}
PORT=${PORT:-18471}
work=$(mktemp -d)
trap 'kill "$srv" 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/parley" ./cmd/parley
P=$work/parley
url=http://127.0.0.1:$PORT

"$P" serve --data "$work/data" --listen 127.0.0.1:$PORT --log-level warn 2>"$work/serve.log" &
srv=$!
for _ in $(seq 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.1; done
ta=$("$P" party add --data "$work/data" alpha | tail -1)
tb=$("$P" party add --data "$work/data" bravo | tail -1)
export PARLEY_CONFIG=$work/alpha.json
"$P" login --server "$url" --token "$ta" >/dev/null
"$P" keygen --out "$work/alpha-keys.pem" >/dev/null
PARLEY_CONFIG=$work/bravo.json "$P" login --server "$url" --token "$tb" >/dev/null
PARLEY_CONFIG=$work/bravo.json "$P" keygen --out "$work/bravo-keys.pem" >/dev/null
ag=$("$P" agreement propose --with bravo --ratio 1:1 --grace 0 --types indicator --notice 0s --match-cap "$N" --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
h=$(PARLEY_CONFIG=$work/bravo.json "$P" agreement show "$ag" --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["awaiting_document_hash"])')
PARLEY_CONFIG=$work/bravo.json "$P" agreement sign "$ag" --version 1 --hash "$h" >/dev/null 2>&1

overlap=$((N / 10))
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "x%d@example.org\n", i }' >"$work/alpha.txt"
awk -v lo=$((N - overlap)) -v hi=$((2 * N - overlap)) 'BEGIN { for (i = lo; i < hi; i++) printf "x%d@example.org\n", i }' >"$work/bravo.txt"

cpu() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; } # utime+stime at 100 Hz
echo "N=$N; load before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $(go version)"
s0=$(cpu "$srv")
start=$(date +%s.%N)
/usr/bin/time -f 'alpha: wall %e s, CPU %U+%S s, peak RSS %M KiB' "$P" match --agreement "$ag" --list "$work/alpha.txt" --quiet >"$work/alpha.out" 2>"$work/alpha.time" &
a=$!
PARLEY_CONFIG=$work/bravo.json /usr/bin/time -f 'bravo: wall %e s, CPU %U+%S s, peak RSS %M KiB' \
	"$P" match --agreement "$ag" --join --list "$work/bravo.txt" --quiet >"$work/bravo.out" 2>"$work/bravo.time"
wait "$a"
end=$(date +%s.%N)
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
tail -1 "$work/alpha.time"
tail -1 "$work/bravo.time"
echo "server: CPU $(echo "$(cpu "$srv") - $s0" | bc) s during the match, peak RSS $(awk '/VmHWM/ { print $2 }' "/proc/$srv/status") KiB (whole life)"
echo "both sides done: wall $(echo "$end - $start" | bc) s"
grep -h 'matched' "$work/alpha.out" "$work/bravo.out"
