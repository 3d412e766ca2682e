#!/usr/bin/env bash
# bench-pg-cpu.sh — PostgreSQL ingest through `parley serve`, with the CPU per
# object of parley and of PostgreSQL, and what the database sessions waited on
# (docs/BENCHMARKS.md, "PostgreSQL: what serialised several instances").
#
#   scripts/bench-pg-cpu.sh ingest BIN PGBASE DBNAME INSTANCES CLIENTS PER
#       a fresh database DBNAME on PGBASE (postgres://user@host:port, no path),
#       INSTANCES `BIN serve` on it, CLIENTS concurrent `BIN bench ingest`
#       clients round-robin over them, PER objects each (envelopes of 1,000),
#       into one operator collection. Prints objects/s, parley's CPU per object
#       (/proc/PID/stat of the instances), PostgreSQL's (every backend of
#       DBNAME plus the checkpointer, WAL writer and background writer of the
#       machine's clusters), pg_stat_activity wait events sampled every 200 ms,
#       and pg_stat_database's commits and rollbacks (re-run transactions).
#   scripts/bench-pg-cpu.sh gets BIN PGBASE DBNAME N [GETS]
#       one instance, fill N objects, then GETS (default 1,000) GETs by id and
#       one full read, with the server's CPU for each.
#
# Run by hand on loopback only; PostgreSQL must let this user create databases.
set -euo pipefail
MODE=$1; shift
OUTDIR=${OUT_DIR:-/tmp/parley-pgcpu}

# fresh DBN: a new database on PGBASE; sets DB to its URL and OUT to its log directory.
fresh() {
	OUT=$OUTDIR/$DBN
	rm -rf "$OUT"
	mkdir -p "$OUT"
	psql "$PGBASE/postgres" -qc "DROP DATABASE IF EXISTS $DBN WITH (FORCE)" >/dev/null 2>&1
	psql "$PGBASE/postgres" -qc "CREATE DATABASE $DBN" >/dev/null
	DB="$PGBASE/$DBN?sslmode=disable"
}

PIDS=()
URLS=()
# serve I ARGS...: starts instance I of BIN on DB.
serve() {
	local i=$1 port ok=0
	shift
	port=$((30000 + RANDOM % 20000))
	"$BIN" serve --listen 127.0.0.1:$port --db "$DB" "$@" >"$OUT/serve$i.log" 2>&1 &
	PIDS+=($!)
	URLS+=(http://127.0.0.1:$port/)
	for _ in $(seq 200); do
		curl -sf http://127.0.0.1:$port/healthz >/dev/null && { ok=1; break; }
		kill -0 "${PIDS[-1]}" 2>/dev/null || break
		sleep 0.2
	done
	[ $ok = 1 ] || { echo "serve $i failed:"; cat "$OUT/serve$i.log"; kill "${PIDS[@]}" 2>/dev/null; exit 1; }
}
stopall() { for p in "${PIDS[@]}"; do kill -INT "$p"; done; wait "${PIDS[@]}" 2>/dev/null || true; }
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
pgticks() { ticks $(pgrep -u postgres -f "postgres: .*$DBN"; pgrep -u postgres -f "postgres: .*(walwriter|checkpointer|background writer)"); }
load1() { cut -d' ' -f1 /proc/loadavg; }

case $MODE in
ingest)
	BIN=$1 PGBASE=$2 DBN=$3 N=$4 C=$5 PER=$6
	fresh
	for i in $(seq "$N"); do
		if [ "$i" = 1 ]; then serve "$i" --migrate; else serve "$i"; fi
	done
	TOK=$("$BIN" party add --db "$DB" bench | tail -1)
	COLL=$("$BIN" collection add --db "$DB" --title bench --read bench --write bench | tail -1)
	(while sleep 0.2; do psql "$DB" -Atc "SELECT coalesce(wait_event_type, '-') || ':' || coalesce(wait_event, 'CPU') || ':' || state
		FROM pg_stat_activity WHERE datname = '$DBN' AND state <> 'idle' AND pid <> pg_backend_pid()" 2>/dev/null; done) >"$OUT/waits.txt" &
	SAMPLER=$!
	c0=$(ticks "${PIDS[@]}") g0=$(pgticks) l0=$(load1) t0=$(date +%s.%N)
	CL=()
	for i in $(seq "$C"); do
		"$BIN" bench ingest --url "${URLS[$(((i - 1) % N))]}" --token "$TOK" --collection "$COLL" --objects "$PER" --seed $((100 + i)) >"$OUT/client$i.log" 2>&1 &
		CL+=($!)
	done
	for c in "${CL[@]}"; do wait "$c"; done
	t1=$(date +%s.%N) c1=$(ticks "${PIDS[@]}") g1=$(pgticks) l1=$(load1)
	kill $SAMPLER
	awk -v n=$((C * PER)) -v a="$t0" -v b="$t1" -v c=$((c1 - c0)) -v g=$((g1 - g0)) -v l0="$l0" -v l1="$l1" 'BEGIN{
		printf "%d objects, %.2f s, %.0f objects/s; parley %.1f µs/object, PostgreSQL %.1f µs/object; load %s–%s\n", n, b - a, n / (b - a), c * 10000 / n, g * 10000 / n, l0, l1}'
	echo "wait events sampled (type:event:state):"
	sort "$OUT/waits.txt" | uniq -c | sort -rn | head -12
	psql "$DB" -Atc "SELECT 'commits ' || xact_commit || ', rollbacks ' || xact_rollback || ', deadlocks ' || deadlocks FROM pg_stat_database WHERE datname = '$DBN'"
	stopall
	;;
gets)
	BIN=$1 PGBASE=$2 DBN=$3 N=$4 GETS=${5:-1000}
	fresh
	serve 1 --migrate
	TOK=$("$BIN" party add --db "$DB" bench | tail -1)
	COLL=$("$BIN" collection add --db "$DB" --title bench --read bench --write bench | tail -1)
	"$BIN" bench ingest --url "${URLS[0]}" --token "$TOK" --collection "$COLL" --objects "$N" --seed 7 --server-pid "${PIDS[0]}" | grep overall
	c0=$(ticks "${PIDS[0]}")
	"$BIN" bench taxii --url "${URLS[0]}" --token "$TOK" --collection "$COLL" --objects "$N" --seed 7 --gets "$GETS" --phases gets | grep p50
	c1=$(ticks "${PIDS[0]}")
	"$BIN" bench taxii --url "${URLS[0]}" --token "$TOK" --collection "$COLL" --objects "$N" --seed 7 --phases read | grep read-back
	c2=$(ticks "${PIDS[0]}")
	echo "server CPU: $(((c1 - c0) * 10)) ms for $GETS GETs, $(((c2 - c1) * 10)) ms for the read; load $(load1)"
	stopall
	;;
*)
	echo "usage: see the head of $0" >&2
	exit 2
	;;
esac
