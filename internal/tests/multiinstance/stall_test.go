package multiinstance

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// What the load run reports about its longest stall: which requests were
// in flight across it, what every parley session of the database was
// doing meanwhile (pg_stat_activity, sampled), and where the test
// process's goroutines were blocked once the stall had lasted a while.

// flight is one HTTP request in progress.
type flight struct {
	what  string
	start time.Time
}

// gapReport is what was known about one gap when it ended.
type gapReport struct {
	start, end time.Time
	flights    []string // in flight when it ended, the one ending it first
	goroutines []byte   // aggregated goroutine profile taken during it
}

var idPattern = regexp.MustCompile(`[a-z0-9-]+--[0-9a-f-]{36}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// shortPath replaces ids in a request path by a placeholder, so that one
// endpoint reads the same on every line.
func shortPath(p string) string {
	return idPattern.ReplaceAllStringFunc(p, func(s string) string {
		if i := strings.Index(s, "--"); i > 0 {
			return "{" + s[:i] + "}"
		}
		return "{id}"
	})
}

// watchGaps takes a goroutine profile of the test process whenever no
// request has completed for longer than after, once per gap, and hands it
// to the transport, which keeps it if the gap becomes the longest.
func (t *timingTransport) watchGaps(ctx context.Context, after time.Duration) {
	tick := time.NewTicker(after / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t.mu.Lock()
		last, dumped := t.last, t.dumpedFor
		t.mu.Unlock()
		if time.Since(last) < after || dumped.Equal(last) {
			continue
		}
		var b bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&b, 2)
		t.mu.Lock()
		if t.last.Equal(last) {
			t.dumpedFor, t.pending = last, b.Bytes()
		}
		t.mu.Unlock()
	}
}

// activity samples pg_stat_activity every interval: parley's sessions
// (application_name prefix) and PostgreSQL's own processes when they are
// doing something (a checkpoint's writes and syncs, autovacuum).
type activity struct {
	mu      sync.Mutex
	samples []activitySample
	err     error
}

type activitySample struct {
	at          time.Time
	checkpoints int64 // checkpoints done since PostgreSQL's statistics reset
	rows        []session
}

// session is one row of pg_stat_activity.
type session struct {
	who             string // application_name, or the backend type
	pid             int
	state, wait     string
	inTx, inState   float64 // seconds
	blockers, query string
}

func (r session) String() string {
	line := fmt.Sprintf("%-14s pid %-6d %-20s %-28s", r.who, r.pid, r.state, r.wait)
	if r.inTx > 0 {
		line += fmt.Sprintf(" tx %5.0fms", r.inTx*1000)
	}
	line += fmt.Sprintf(" state %5.0fms", r.inState*1000)
	if r.blockers != "{}" {
		line += " blocked by " + r.blockers
	}
	if r.state != "idle" {
		line += " | " + r.query
	}
	return line
}

const activityQuery = `
SELECT a.pid, coalesce(nullif(a.application_name, ''), a.backend_type), coalesce(a.state, ''),
       coalesce(a.wait_event_type || ':' || a.wait_event, 'running'),
       coalesce(extract(epoch FROM now() - a.xact_start), 0)::float8,
       coalesce(extract(epoch FROM now() - a.state_change), 0)::float8,
       pg_blocking_pids(a.pid)::text,
       left(regexp_replace(coalesce(a.query, ''), '\s+', ' ', 'g'), 90)
FROM pg_stat_activity a
WHERE a.pid <> pg_backend_pid()
  AND (a.application_name LIKE $1 || '%'
       OR (a.backend_type <> 'client backend'
           AND coalesce(a.wait_event, '') NOT IN ('CheckpointerMain', 'BgWriterMain', 'BgWriterHibernate',
               'WalWriterMain', 'AutoVacuumMain', 'LogicalLauncherMain', 'ArchiverMain', 'SysLoggerMain')))
ORDER BY 2, 1`

func (s *activity) run(ctx context.Context, url, app string, every time.Duration) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		s.fail(err)
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		smp := activitySample{at: time.Now()}
		if err := conn.QueryRow(ctx, `SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter`).Scan(&smp.checkpoints); err != nil {
			s.fail(err)
			return
		}
		rows, err := conn.Query(ctx, activityQuery, app)
		if err != nil {
			s.fail(err)
			return
		}
		for rows.Next() {
			var pid int
			var who, state, wait, blockers, query string
			var inTx, inState float64
			if err := rows.Scan(&pid, &who, &state, &wait, &inTx, &inState, &blockers, &query); err != nil {
				rows.Close()
				s.fail(err)
				return
			}
			row := session{who: who, pid: pid, state: state, wait: wait, inTx: inTx, inState: inState, blockers: blockers, query: query}
			smp.rows = append(smp.rows, row)
		}
		rows.Close()
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.samples = append(s.samples, smp)
		s.mu.Unlock()
	}
}

func (s *activity) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// between returns the samples taken from from to to.
func (s *activity) between(from, to time.Time) []activitySample {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.samples), func(i int) bool { return !s.samples[i].at.Before(from) })
	var out []activitySample
	for ; i < len(s.samples) && !s.samples[i].at.After(to); i++ {
		out = append(out, s.samples[i])
	}
	return out
}

// parleyFrames aggregates a full goroutine dump (debug=2) to the
// goroutines with a parley frame: how many share a state and a stack, the
// state ("runnable": ready but waiting for a CPU; "IO wait": for the
// network, e.g. a reply from PostgreSQL; "select", "semacquire"…), where
// they wait and their innermost parley frames.
func parleyFrames(dump []byte) []string {
	counts := map[string]int{}
	var keys []string
	for _, block := range strings.Split(string(dump), "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[0], "goroutine ") || !strings.Contains(block, "parley-cti/parley/internal/") {
			continue
		}
		state := lines[0]
		if i, j := strings.Index(state, "["), strings.Index(state, "]"); i >= 0 && j > i {
			state, _, _ = strings.Cut(state[i+1:j], ",") // drop ", 2 minutes"
		}
		var frames []string
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "created by ") {
				continue
			}
			fn := l
			if i := strings.LastIndex(fn, "("); i > 0 {
				fn = fn[:i]
			}
			fn = strings.TrimPrefix(fn, "github.com/parley-cti/parley/internal/")
			switch {
			case strings.HasPrefix(fn, "runtime."):
			case len(frames) == 0:
				frames = append(frames, fn) // where it waits
			case !strings.Contains(l, "parley-cti/parley/internal/") || len(frames) >= 6:
			default:
				frames = append(frames, fn)
			}
		}
		key := fmt.Sprintf("[%s] %s", state, strings.Join(frames, " ← "))
		if counts[key] == 0 {
			keys = append(keys, key)
		}
		counts[key]++
	}
	sort.SliceStable(keys, func(i, j int) bool { return counts[keys[i]] > counts[keys[j]] })
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%4d × %s", counts[k], k)
	}
	return out
}

// diskProbe writes 8 KiB and syncs it every interval, in a file on the
// test's temporary directory, and records how long each sync took: when
// the database and the temporary directory share a disk, a stall of every
// commit shows here too.
type diskProbe struct {
	mu    sync.Mutex
	syncs []probeSync
	err   error
}

type probeSync struct {
	at time.Time // when the write began
	d  time.Duration
}

func (p *diskProbe) run(ctx context.Context, dir string, every time.Duration) {
	f, err := os.CreateTemp(dir, "disk-probe")
	if err != nil {
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		return
	}
	defer f.Close()
	buf := make([]byte, 8<<10)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for k := int64(0); ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := time.Now()
		_, err := f.WriteAt(buf, (k%128)*int64(len(buf)))
		if err == nil {
			err = syscall.Fdatasync(int(f.Fd()))
		}
		p.mu.Lock()
		if err != nil && p.err == nil {
			p.err = err
		}
		p.syncs = append(p.syncs, probeSync{at: start, d: time.Since(start)})
		p.mu.Unlock()
	}
}

// slowest returns the slowest sync that overlapped from..to (to zero: any
// time) and how many syncs took longer than 100 ms in all.
func (p *diskProbe) slowest(from, to time.Time) (worst probeSync, over100ms int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.syncs {
		if s.d > 100*time.Millisecond {
			over100ms++
		}
		if !to.IsZero() && (s.at.After(to) || s.at.Add(s.d).Before(from)) {
			continue
		}
		if s.d > worst.d {
			worst = s
		}
	}
	return worst, over100ms
}

// holders counts, over every sample, what parley's sessions that were
// neither idle nor queued for an agreement's lock were doing (and those
// idle while holding it): the
// agreement's critical section, split by wait event (Client:ClientRead is
// the server's own code between statements; IO and LWLock:WAL* are the
// commit's flush).
func (s *activity) holders() (total int, by map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	by = map[string]int{}
	for _, smp := range s.samples {
		// A session a waiter is blocked by holds the agreement's lock,
		// even when idle: between its COMMIT and its unlock.
		blocking := map[string]bool{}
		for _, r := range smp.rows {
			for _, pid := range strings.Split(strings.Trim(r.blockers, "{}"), ",") {
				blocking[pid] = true
			}
		}
		for _, r := range smp.rows {
			if !strings.HasPrefix(r.who, "parley-load") || r.wait == "Lock:advisory" || r.state == "" {
				continue
			}
			if r.state == "idle" {
				if blocking[strconv.Itoa(r.pid)] {
					total++
					by["idle, still holding the agreement's lock (after COMMIT, before unlock)"]++
				}
				continue
			}
			total++
			by[r.state+" "+r.wait]++
		}
	}
	return total, by
}
