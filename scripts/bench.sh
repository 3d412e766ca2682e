#!/usr/bin/env bash
# bench.sh — every figure of issue 18 (and issue 14's two-node figures), from `parley serve` driven by separate
# `parley bench` client processes on loopback, with the machine's load average
# beside each figure and each goal marked met or not.
#
# Run by hand (never in CI; it takes minutes to hours and the machine's load
# changes every figure):
#
#   scripts/bench.sh                       # quick run, 10,000 objects (a few minutes)
#   scripts/bench.sh --size 1000000        # the issue's sizes (an hour or more)
#
# Options (each also an environment variable):
#   --size N            objects per collection (PARLEY_BENCH_SIZE, default 10000)
#   --out DIR           where logs and results.md go (default: a new directory under /tmp)
#   --bin PATH          a built parley (default: go build ./cmd/parley into --out)
#   --pg URL            PostgreSQL server to create scratch databases on
#                       (PARLEY_BENCH_POSTGRES, default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable);
#                       "none" skips the PostgreSQL figures
#   --medallion DIR     a checkout of the OASIS reference TAXII server (oasis-open/cti-taxii-server),
#                       whose dependencies python3 (or $MEDALLION_PYTHON) can import (MEDALLION_DIR); run side by side at
#                       min(size, 10000) objects. Without it that comparison is marked "not run".
#   --medallion-timeout D  cap on each of its phases (default 10m; its full read is quadratic)
#   --pg-size N         objects in the PostgreSQL sections (default min(size, 100000), the issue's PostgreSQL size)
#   --load-duration D   the 64-client load (default 5m at 1,000,000 objects, else 30s)
#   --psi-size N        each side's list in private matching (default: --size)
#   --g2g-runs N        give-to-get ABAB runs, each on a fresh server and database (default 3): one
#                       run's figure moves by several points with where deferred work (checkpoints,
#                       merges) lands, so the verdict is on their mean, with each run shown
#   --only LIST         comma-separated sections to run: side,sqlite,pg,multi,load,g2g,psi,nodes (default all)
#
# Every step's full output is kept in --out; results.md holds the table that
# docs/BENCHMARKS.md quotes. Only 127.0.0.1 is ever contacted.
set -euo pipefail

SIZE=${PARLEY_BENCH_SIZE:-10000}
OUT=""
BIN=""
PG=${PARLEY_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
MEDALLION=${MEDALLION_DIR:-}
MEDALLION_TIMEOUT=10m
LOAD_DURATION=""
PSI_SIZE=""
PG_SIZE=""
G2G_RUNS=3
ONLY="side,sqlite,pg,multi,load,g2g,psi,nodes"
while [ $# -gt 0 ]; do
	case "$1" in
	--size) SIZE=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--bin) BIN=$2; shift 2 ;;
	--pg) PG=$2; shift 2 ;;
	--medallion) MEDALLION=$2; shift 2 ;;
	--medallion-timeout) MEDALLION_TIMEOUT=$2; shift 2 ;;
	--pg-size) PG_SIZE=$2; shift 2 ;;
	--load-duration) LOAD_DURATION=$2; shift 2 ;;
	--psi-size) PSI_SIZE=$2; shift 2 ;;
	--g2g-runs) G2G_RUNS=$2; shift 2 ;;
	--only) ONLY=$2; shift 2 ;;
	-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
[[ $SIZE =~ ^[0-9]+$ ]] && [ "$SIZE" -ge 1000 ] || { echo "bench.sh: --size must be a number ≥ 1000" >&2; exit 2; }
if [ -z "$LOAD_DURATION" ]; then
	if [ "$SIZE" -ge 1000000 ]; then LOAD_DURATION=5m; else LOAD_DURATION=30s; fi
fi
PSI_SIZE=${PSI_SIZE:-$SIZE}
PG_SIZE=${PG_SIZE:-$((SIZE < 100000 ? SIZE : 100000))}
SIDE_SIZE=$((SIZE < 10000 ? SIZE : 10000))
ABAB_SIZE=$((SIZE < 200000 ? SIZE : 200000))
MULTI_SIZE=$((SIZE < 60000 ? SIZE : 60000))
MULTI_SIZE=$((MULTI_SIZE / 3 * 3))
GETS=1000

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/parley-bench.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RESULTS=$OUT/results.md
PORT=$((20000 + RANDOM % 20000))
PIDS=()
PGDBS=()

want() { [[ ",$ONLY," == *",$1,"* ]]; }
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/bench.log" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }

cleanup() {
	for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	for db in "${PGDBS[@]}"; do psql "$PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

if [ -z "$BIN" ]; then
	log "building parley"
	(cd "$REPO" && go build -o "$OUT/parley" ./cmd/parley)
	BIN=$OUT/parley
fi

# row SECTION FIGURE GOAL MEASURED LOAD MET
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@" >>"$RESULTS"; log "figure: $2 = $4 (goal $3, load $5): $6"; }
# met CMP A B: "met" when awk finds A CMP B true, else "**not met**"
met() { if awk -v a="$2" -v b="$3" "BEGIN{exit !(a $1 b)}"; then echo met; else echo "**not met**"; fi; }

# serve NAME ARGS...: starts parley serve on a new port; sets URL and SPID.
serve() {
	local name=$1; shift
	PORT=$((PORT + 1))
	local port=$PORT
	"$BIN" serve --listen 127.0.0.1:$port "$@" >"$OUT/$name.serve.log" 2>&1 &
	SPID=$!
	PIDS+=("$SPID")
	URL=http://127.0.0.1:$port/
	for _ in $(seq 1200); do
		curl -sf "${URL}healthz" >/dev/null 2>&1 && return 0
		kill -0 "$SPID" 2>/dev/null || { cat "$OUT/$name.serve.log" >&2; echo "bench.sh: parley serve ($name) exited" >&2; exit 1; }
		sleep 0.5
	done
	echo "bench.sh: parley serve ($name) did not answer" >&2
	exit 1
}
stop() { kill -INT "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
hwm_mib() { awk '/^VmHWM/{printf "%.0f", $2/1024}' "/proc/$1/status"; }

# newdb NAME: a fresh PostgreSQL database, dropped at exit; sets DB to its URL.
# Not run in a command substitution, whose subshell would lose PGDBS.
newdb() {
	local db=parley_bench_$$_$1
	psql "$PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
	psql "$PG" -qc "CREATE DATABASE $db" >/dev/null
	PGDBS+=("$db")
	DB=$(echo "$PG" | sed -E "s#/[^/?]*(\?|$)#/$db\1#")
}

# fresh NAME: a fresh SQLite data directory $OUT/NAME.data with a party and
# an operator collection, served; sets D, TOK, COLL (and URL, SPID).
fresh() {
	D=$OUT/$1.data
	TOK=$(party --data "$D" bench)
	COLL=$(collection --data "$D" bench)
	serve "$1" --data "$D"
}

# ingest_rows SECTION WHAT LOG LOAD1: the rate and last/first rows of a
# `parley bench ingest` fill logged in LOG; sets INGEST_RATE.
ingest_rows() {
	local rate ratio
	rate=$(field 'ingest overall: [0-9]+ objects, ([0-9]+) objects/s' <"$3")
	ratio=$(field 'last window / first = ([0-9.]+)' <"$3")
	row "$1" "ingest, $2" "≥ 30,000 objects/s" "$rate objects/s" "$4–$(load1)" "$(met '>=' "$rate" 30000)"
	row "$1" "ingest, $2: last window / first" "≥ 0.85" "$ratio" "$4–$(load1)" "$(met '>=' "$ratio" 0.85)"
	INGEST_RATE=$rate
}

# party STORE-ARGS NAME: creates a party, prints its token.
party() { "$BIN" party add "$@" | tail -1; }
# collection STORE-ARGS PARTY: an operator collection the party reads and writes; prints its id.
collection() { local p=${*: -1}; "$BIN" collection add "${@:1:$#-1}" --title bench --read "$p" --write "$p" | tail -1; }

field() { sed -nE "s#.*$1.*#\\1#p" | head -1; }
jsonfield() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

{
	echo "# parley benchmarks (issue 18) — $(date -u '+%Y-%m-%d %H:%M UTC'), size $SIZE"
	echo
	echo "Machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version 2>/dev/null | cut -d' ' -f3-), commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)."
	echo "Load average at start: $(cut -d' ' -f1-3 /proc/loadavg). Every figure: \`parley serve\` and a separate \`parley bench\` client on 127.0.0.1; load1 is the 1-minute load average when the figure was taken."
	echo
	echo "| section | figure | goal | measured | load1 | verdict |"
	echo "|---|---|---|---|---|---|"
} >"$RESULTS"

# taxii_figures SECTION URL TOKEN COLL SERVER-PID: fill to SIZE (windows), GETs
# by id, then one full read, then 8 concurrent full readers on a restarted
# server (fresh VmHWM). Sets RESTART (a function name) by the caller.
taxii_figures() {
	local sec=$1 url=$2 tok=$3 coll=$4 pid=$5 seed=$6 SIZE=$7 l
	log "$sec: ingest $SIZE"
	l=$(load1)
	"$BIN" bench ingest --url "$url" --token "$tok" --collection "$coll" --objects "$SIZE" --seed "$seed" --server-pid "$pid" | tee "$OUT/$sec.ingest.log"
	ingest_rows "$sec" "0 → $SIZE, envelopes of 1,000" "$OUT/$sec.ingest.log" "$l"

	log "$sec: $GETS GETs by id, before any long read"
	l=$(load1)
	"$BIN" bench taxii --url "$url" --token "$tok" --collection "$coll" --objects "$SIZE" --seed "$seed" --gets $GETS --phases gets | tee "$OUT/$sec.gets.log"
	local p50 p99
	p50=$(field 'p50 ([0-9.]+)ms' <"$OUT/$sec.gets.log")
	p99=$(field 'p99 ([0-9.]+)ms' <"$OUT/$sec.gets.log")
	row "$sec" "GET by id at $SIZE, p50 / p99" "p50 ≤ 1 ms" "$p50 / $p99 ms" "$l–$(load1)" "$(met '<=' "$p50" 1)"

	log "$sec: one full read"
	l=$(load1)
	"$BIN" bench taxii --url "$url" --token "$tok" --collection "$coll" --objects "$SIZE" --seed "$seed" --phases read | tee "$OUT/$sec.read.log"
	READ_RATE=$(field 'read-back: .* ([0-9]+) objects/s' <"$OUT/$sec.read.log")
	row "$sec" "read all $SIZE, limit=1000/next" "≥ 100,000 objects/s" "$READ_RATE objects/s" "$l–$(load1)" "$(met '>=' "$READ_RATE" 100000)"
}

# readers_figure SECTION TOKEN COLL SERVE-ARGS...: a fresh server on the
# filled database, 8 concurrent full readers, the server's peak RSS.
readers_figure() {
	local sec=$1 tok=$2 coll=$3; shift 3
	serve "$sec-readers" "$@"
	local l; l=$(load1)
	log "$sec: 8 concurrent full readers (server VmHWM before: $(hwm_mib $SPID) MiB)"
	"$BIN" bench readers --url "$URL" --token "$tok" --collection "$coll" --readers 8 | tee "$OUT/$sec.readers.log"
	local peak rate failed
	peak=$(hwm_mib $SPID)
	rate=$(field 'each, [0-9.]+s, ([0-9]+) objects/s' <"$OUT/$sec.readers.log")
	failed=$(field ', ([0-9]+) failed' <"$OUT/$sec.readers.log")
	stop $SPID
	row "$sec" "server peak RSS (VmHWM), 8 concurrent full readers of $SIZE ($rate objects/s together, $failed failed)" "≤ 300 MB (286 MiB)" "$peak MiB" "$l–$(load1)" "$(met '<=' "$peak" 286)"
}

if want side; then
	log "side by side with the reference server, $SIDE_SIZE objects"
	fresh side
	l=$(load1)
	"$BIN" bench taxii --url "$URL" --token "$TOK" --collection "$COLL" --objects "$SIDE_SIZE" --seed 1 --gets 200 --phase-timeout 10m | tee "$OUT/side.parley.log"
	stop $SPID
	P_IN=$(field 'ingest: .* ([0-9]+) objects/s' <"$OUT/side.parley.log")
	P_GET=$(field 'p50 ([0-9.]+)ms' <"$OUT/side.parley.log")
	P_READ=$(field 'read-back: .* ([0-9]+) objects/s' <"$OUT/side.parley.log")
	if [ -n "$MEDALLION" ]; then
		# The reference server's memory backend, its own sample data (API root
		# trustgroup1, a writable collection), on loopback.
		PORT=$((PORT + 1))
		MPORT=$PORT
		cp "$MEDALLION/medallion/test/data/default_data.json" "$OUT/medallion-data.json"
		cat >"$OUT/medallion.json" <<EOF
{"backend": {"module_class": "MemoryBackend", "filename": "$OUT/medallion-data.json"},
 "users": {"admin": "Password0"}, "taxii": {"max_page_size": 1000}}
EOF
		(cd "$MEDALLION" && PYTHONPATH="$MEDALLION${PYTHONPATH:+:$PYTHONPATH}" exec "${MEDALLION_PYTHON:-python3}" -m medallion.scripts.run \
			--host 127.0.0.1 --port "$MPORT" --conf-file "$OUT/medallion.json" --no-conf-dir) >"$OUT/medallion.serve.log" 2>&1 &
		MPID=$!
		PIDS+=("$MPID")
		for _ in $(seq 120); do curl -sf -u admin:Password0 -H 'Accept: application/taxii+json;version=2.1' "http://127.0.0.1:$MPORT/taxii2/" >/dev/null 2>&1 && break; sleep 0.5; done
		ml=$(load1)
		"$BIN" bench taxii --url "http://127.0.0.1:$MPORT/" --root trustgroup1 --collection 365fed99-08fa-fdcd-a1b3-fb247eb41d01 \
			--user admin --password Password0 --objects "$SIDE_SIZE" --seed 1 --gets 200 --phase-timeout "$MEDALLION_TIMEOUT" | tee "$OUT/side.medallion.log" || true
		stop $MPID
		M_IN=$(field 'ingest: .* ([0-9]+) objects/s' <"$OUT/side.medallion.log")
		M_GET=$(field 'p50 ([0-9.]+)ms' <"$OUT/side.medallion.log")
		M_READ=$(field 'read-back: .* ([0-9]+) objects/s' <"$OUT/side.medallion.log")
		M_CAP=$(grep -c CAPPED "$OUT/side.medallion.log" || true)
		ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.1f×", a / b; else printf "—" }'; }
		# A comparison, not a goal of the issue: the verdict column gives the ratio.
		row side "ingest $SIDE_SIZE: parley / reference server" "—" "$P_IN / $M_IN objects/s" "$l / $ml" "parley $(ratio "$P_IN" "$M_IN")"
		row side "GET by id p50 (200, before any long read): parley / reference" "—" "$P_GET / $M_GET ms" "$l / $ml" "parley $(ratio "$M_GET" "$P_GET") faster"
		row side "full read $SIDE_SIZE, limit=1000: parley / reference ($M_CAP phase(s) capped at $MEDALLION_TIMEOUT)" "—" "$P_READ / ${M_READ:-0} objects/s" "$l / $ml" "parley $(ratio "$P_READ" "${M_READ:-0}")"
	else
		row side "ingest / GET p50 / full read, $SIDE_SIZE (parley only)" "—" "$P_IN objects/s / $P_GET ms / $P_READ objects/s" "$l" "reference server not run (no --medallion)"
	fi
fi

if want sqlite; then
	log "SQLite, $SIZE objects"
	fresh sqlite
	taxii_figures sqlite "$URL" "$TOK" "$COLL" "$SPID" 7 "$SIZE"
	SQLITE_INGEST=$INGEST_RATE SQLITE_READ=$READ_RATE
	stop $SPID
	readers_figure sqlite "$TOK" "$COLL" --data "$D" --skip-integrity-check

	# A bulk loader keeps more than one POST going: the server parses and
	# checks the next envelope while its writer commits the last.
	log "SQLite, $SIZE objects again, 2 POSTs in flight"
	fresh sqlite2
	l=$(load1)
	"$BIN" bench ingest --url "$URL" --token "$TOK" --collection "$COLL" --objects "$SIZE" --seed 8 --in-flight 2 --server-pid "$SPID" | tee "$OUT/sqlite.inflight.log"
	stop $SPID
	ingest_rows sqlite "0 → $SIZE, envelopes of 1,000, 2 POSTs in flight (wall time)" "$OUT/sqlite.inflight.log" "$l"
fi

if want pg && [ "$PG" != none ]; then
	log "PostgreSQL, $PG_SIZE objects"
	newdb one
	serve pg --db "$DB" --migrate
	TOK=$(party --db "$DB" bench)
	COLL=$(collection --db "$DB" bench)
	taxii_figures pg "$URL" "$TOK" "$COLL" "$SPID" 7 "$PG_SIZE"
	stop $SPID
	if [ -n "${SQLITE_INGEST:-}" ]; then
		row pg "PostgreSQL ($PG_SIZE) / SQLite ($SIZE), same run" "side by side" "ingest $(awk -v a="$INGEST_RATE" -v b="$SQLITE_INGEST" 'BEGIN{printf "%.2f×", a/b}'), read $(awk -v a="$READ_RATE" -v b="$SQLITE_READ" 'BEGIN{printf "%.2f×", a/b}')" "$(load1)" "—"
	fi
	SIZE=$PG_SIZE readers_figure pg "$TOK" "$COLL" --db "$DB"
fi

if want multi && [ "$PG" != none ]; then
	# The same three concurrent clients, first all on one instance, then one
	# on each of three instances sharing the database: only the number of
	# instances changes. Each configuration writes its own fresh collection.
	log "PostgreSQL, 1 and 3 instances, $MULTI_SIZE objects"
	newdb multi
	serve multi1 --db "$DB" --migrate
	P1=$SPID U1=$URL
	serve multi2 --db "$DB"
	P2=$SPID U2=$URL
	serve multi3 --db "$DB"
	P3=$SPID U3=$URL
	TOK=$(party --db "$DB" bench)
	per=$((MULTI_SIZE / 3))
	multi() { # NAME URL URL URL
		local name=$1 coll start end i=0 clients=(); shift
		coll=$(collection --db "$DB" bench)
		start=$(date +%s.%N)
		for u in "$@"; do
			i=$((i + 1))
			"$BIN" bench ingest --url "$u" --token "$TOK" --collection "$coll" --objects $per --seed $((100 + i)) >"$OUT/multi.$name.$i.log" &
			clients+=($!)
		done
		for c in "${clients[@]}"; do wait "$c"; done
		end=$(date +%s.%N)
		awk -v n="$MULTI_SIZE" -v a="$start" -v b="$end" 'BEGIN{printf "%.0f", n / (b - a)}'
	}
	l=$(load1)
	ONE=$(multi one "$U1" "$U1" "$U1")
	THREE=$(multi three "$U1" "$U2" "$U3")
	stop $P1; stop $P2; stop $P3
	SCALE=$(awk -v a="$THREE" -v b="$ONE" 'BEGIN{printf "%.2f", a/b}')
	row multi "PostgreSQL ingest, 3 clients × $per: 1 instance → 3 instances" "≥ 1.8×" "$ONE → $THREE objects/s (${SCALE}×)" "$l–$(load1)" "$(met '>=' "$SCALE" 1.8)"
fi

if want load; then
	log "64 clients × $LOAD_DURATION, 20% writes, SQLite"
	fresh load
	l=$(load1)
	"$BIN" bench load --url "$URL" --token "$TOK" --collection "$COLL" --clients 64 --duration "$LOAD_DURATION" --write-fraction 0.2 | tee "$OUT/load.log"
	stop $SPID
	ERR=$(field 'requests in [0-9.]+s, [0-9.]+ req/s, ([0-9]+) errors' <"$OUT/load.log")
	for op in add_objects get_object get_objects; do
		P99=$(awk -v op=$op '$1 == op {sub(/ms$/, "", $7); print $7}' "$OUT/load.log")
		row load "64 clients × $LOAD_DURATION, $op p99 ($ERR errors in all)" "≤ 50 ms, 0 errors" "${P99:-—} ms" "$l–$(load1)" "$(if [ "$ERR" = 0 ]; then met '<=' "${P99:-1e9}" 50; else echo '**not met** (errors)'; fi)"
	done
fi

# Two parties with keys and an agreement in force (for give-to-get and
# matching); their CLI configurations and keys go in $CFG.
agreement_setup() { # DATA-DIR URL
	local d=$1 url=$2
	ALPHA=$(party --data "$d" alpha)
	BRAVO=$(party --data "$d" bravo)
	for p in alpha bravo; do
		local tok=$ALPHA; [ $p = bravo ] && tok=$BRAVO
		PARLEY_CONFIG=$CFG/$p.json "$BIN" login --server "$url" --token "$tok" >/dev/null
		PARLEY_CONFIG=$CFG/$p.json "$BIN" keygen --out "$CFG/$p-keys.pem" >/dev/null
	done
	AG=$(PARLEY_CONFIG=$CFG/alpha.json "$BIN" agreement propose --with bravo --ratio 1:1 --grace 10 --types indicator --notice 0s --json | jsonfield id)
	local h
	h=$(PARLEY_CONFIG=$CFG/bravo.json "$BIN" agreement show "$AG" --json | jsonfield awaiting_document_hash)
	PARLEY_CONFIG=$CFG/bravo.json "$BIN" agreement sign "$AG" --version 1 --hash "$h" >/dev/null
}

# agreement_server NAME: a fresh database and `parley serve` on it, with
# two parties and an agreement in force (agreement_setup).
agreement_server() {
	D=$OUT/$1.data CFG=$OUT/$1
	mkdir -p "$CFG"
	"$BIN" party add --data "$D" operator >/dev/null # creates the database before serve
	serve "$1" --data "$D"
	AURL=$URL APID=$SPID
	agreement_setup "$D" "$AURL"
}

if want g2g || want psi; then
	agreement_server agreement
fi

if want g2g; then
	[[ $G2G_RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: --g2g-runs must be a number ≥ 1" >&2; exit 2; }
	l=$(load1)
	COSTS=() CPUS=() AUSS=() BUSS=()
	for r in $(seq "$G2G_RUNS"); do
		if [ "$r" -gt 1 ]; then
			stop "$APID"
			agreement_server "agreement$r"
		fi
		log "give-to-get ABAB, $ABAB_SIZE objects per side, run $r of $G2G_RUNS"
		PLAIN=$(collection --data "$D" alpha)
		# The agreement's collections as alpha sees them: its own is writable.
		OWN=$(curl -sf -H "Authorization: Bearer $ALPHA" -H 'Accept: application/taxii+json;version=2.1' "${AURL}taxii2/$AG/collections/" |
			python3 -c 'import json,sys; print([c["id"] for c in json.load(sys.stdin)["collections"] if c["can_write"]][0])')
		"$BIN" bench ingest --url "${AURL}taxii2/" --token "$ALPHA" --root shared --collection "$PLAIN" --versus-root "$AG" --versus-collection "$OWN" \
			--objects "$ABAB_SIZE" --server-pid "$APID" --seed 11 | tee "$OUT/g2g.$r.log"
		COSTS+=("$(field 'B costs ([-+][0-9.]+) % wall' <"$OUT/g2g.$r.log")")
		CPUS+=("$(field ', ([-+][0-9.]+) % server CPU' <"$OUT/g2g.$r.log")")
		# Both sides' server CPU an object beside the ratio: work one side
		# defers (a checkpoint) can land in the other's blocks, so a ratio is
		# read with the totals it came from.
		AUSS+=("$(awk '$1 == "A" && NF == 5 {print $4}' "$OUT/g2g.$r.log")")
		BUSS+=("$(awk '$1 == "B" && NF == 5 {print $4}' "$OUT/g2g.$r.log")")
	done
	# mean FORMAT VALUE...: their mean, printed with FORMAT; a run whose
	# log lacked a figure (an empty value) stops the script, rather than
	# counting as 0 in the verdict.
	mean() {
		local f=$1; shift
		printf '%s\n' "$@" | awk -v f="$f" '$1 == "" {bad = 1; exit} {s += $1; n++} END {if (bad || !n) exit 1; printf f, s / n}' ||
			{ echo "bench.sh: a give-to-get run printed no figure (logs: $OUT/g2g.*.log)" >&2; exit 1; }
	}
	COST=$(mean %+.1f "${COSTS[@]}")
	CPU=$(mean %+.1f "${CPUS[@]}")
	AUS=$(mean %.1f "${AUSS[@]}")
	BUS=$(mean %.1f "${BUSS[@]}")
	row g2g "give-to-get vs plain collection, ABAB, $ABAB_SIZE per side, mean of $G2G_RUNS runs on fresh servers (wall; server CPU; server µs an object, plain / agreement; each run's wall)" "≤ +10 %" \
		"$COST % ; $CPU % CPU ; $AUS / $BUS µs ; runs $(IFS=,; echo "${COSTS[*]}") %" "$l–$(load1)" "$(met '<=' "$COST" 10)"

	log "released read: bravo gave nothing, alpha contributed $ABAB_SIZE"
	THEIRS=$(curl -sf -H "Authorization: Bearer $BRAVO" -H 'Accept: application/taxii+json;version=2.1' "${AURL}taxii2/$AG/collections/" |
		python3 -c 'import json,sys; print([c["id"] for c in json.load(sys.stdin)["collections"] if not c["can_write"]][0])')
	l=$(load1)
	"$BIN" bench load --url "${AURL}taxii2/" --token "$BRAVO" --root "$AG" --collection "$THEIRS" --clients 1 --write-fraction 0 \
		--page-limit 10 --max-requests 300 --duration 5m | tee "$OUT/released.log"
	P50=$(awk '$1 == "get_objects" {sub(/ms$/, "", $5); print $5}' "$OUT/released.log")
	row g2g "one 10-object read of the released prefix, $ABAB_SIZE contributed, p50" "≤ 5 ms" "${P50:-—} ms" "$l–$(load1)" "$(met '<=' "${P50:-1e9}" 5)"
fi

if want psi; then
	log "private matching $PSI_SIZE × $PSI_SIZE, 10% overlap"
	awk -v n="$PSI_SIZE" 'BEGIN{for (i = 0; i < n; i++) printf "user%d@alpha.example\n", i}' >"$OUT/psi-alpha.txt"
	awk -v n="$PSI_SIZE" 'BEGIN{o = int(n / 10); for (i = 0; i < o; i++) printf "user%d@alpha.example\n", i; for (i = o; i < n; i++) printf "user%d@bravo.example\n", i}' >"$OUT/psi-bravo.txt"
	l=$(load1)
	start=$(date +%s.%N)
	PARLEY_CONFIG=$CFG/alpha.json /usr/bin/time -f '%e s wall, %U+%S CPU-s, %M KiB peak' "$BIN" match --agreement "$AG" --list "$OUT/psi-alpha.txt" --kind email --quiet >"$OUT/psi.alpha.log" 2>&1 &
	APSI=$!
	PARLEY_CONFIG=$CFG/bravo.json /usr/bin/time -f '%e s wall, %U+%S CPU-s, %M KiB peak' "$BIN" match --agreement "$AG" --join --list "$OUT/psi-bravo.txt" --kind email --quiet >"$OUT/psi.bravo.log" 2>&1
	wait $APSI
	end=$(date +%s.%N)
	WALL=$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b - a}')
	for side in alpha bravo; do head -1 "$OUT/psi.$side.log"; tail -1 "$OUT/psi.$side.log"; done
	MATCHED=$(field '; ([0-9]+) of yours matched' <"$OUT/psi.bravo.log")
	MEM=$(awk -v a="$(sed -nE 's/.* ([0-9]+) KiB peak/\1/p' "$OUT/psi.alpha.log")" -v b="$(sed -nE 's/.* ([0-9]+) KiB peak/\1/p' "$OUT/psi.bravo.log")" -v s="$(hwm_mib $APID)" 'BEGIN{printf "%.0f", a/1024 + b/1024 + s}')
	row psi "matching $PSI_SIZE × $PSI_SIZE (two \`parley match\` clients + serve; $MATCHED matched, $((PSI_SIZE / 10)) expected)" "≤ 60 s" "$WALL s" "$l–$(load1)" "$(met '<=' "$WALL" 60)"
	row psi "matching $PSI_SIZE × $PSI_SIZE, peak RSS of both clients + server (sum of VmHWM)" "≤ 1 GB (954 MiB)" "$MEM MiB" "$l–$(load1)" "$(met '<=' "$MEM" 954)"
fi

if want nodes; then
	NODES_SIZE=$((SIZE < 100000 ? SIZE : 100000))
	log "two sovereign nodes, $NODES_SIZE objects a side, 1:1, grace 1000 (issue 14)"
	l=$(load1)
	"$BIN" bench nodes --objects "$NODES_SIZE" --grace 1000 --seed 7 --dir "$OUT/nodes" | tee "$OUT/nodes.log"
	CONV=$(field 'converged ([0-9.]+) s after the last push' <"$OUT/nodes.log")
	REPL=$(field 'after re-pinning: ([0-9]+) objects/s' <"$OUT/nodes.log")
	RSS=$(field 'peak RSS \(VmHWM\): node A ([0-9]+ MiB, node B [0-9]+ MiB)' <"$OUT/nodes.log")
	row nodes "exchange of $NODES_SIZE a side under 1:1, pushed at once: converged after the last push" "≤ 15 s" "${CONV:-—} s" "$l–$(load1)" "$(met '<=' "${CONV:-1e9}" 15)"
	row nodes "replication between the two nodes, catch-up of 2 × $NODES_SIZE both ways together" "≥ 20,000 objects/s" "${REPL:-—} objects/s" "$l–$(load1)" "$(met '>=' "${REPL:-0}" 20000)"
	row nodes "peak RSS (VmHWM) of each node" "as one server" "node A ${RSS:-—}" "$(load1)" "—"
fi

echo >>"$RESULTS"
echo "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg). Logs: $OUT" >>"$RESULTS"
log "done: $RESULTS"
cat "$RESULTS"
