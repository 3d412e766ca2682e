package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/client"
)

// Ingest posts fresh indicators, one envelope per request, one request at a
// time, and reports throughput per window of Window objects: the shape of
// ingest as a collection grows (issue 18: flat from 0 to 1,000,000).
//
// With Versus set it runs ABAB instead: blocks of Block objects go to the
// target (A) and then to Versus (B) in turn until each has received
// Objects, so that both sides see the same machine load; the report gives
// each side's rate and how much dearer B is (give-to-get against a plain
// collection).
//
// ServerPID, when set, names the server process on this machine: its CPU
// time (from /proc) is reported per object, which varies less than
// wall-clock rates on a shared machine.
type Ingest struct {
	BaseURL, Root, Collection string
	Token, User, Password     string

	Objects      int    // objects to post (per side in ABAB), default 100,000
	EnvelopeSize int    // objects per POST, default 1,000
	Window       int    // objects per reported window, default Objects/10
	Seed         uint64 // 0 means one from the clock
	ServerPID    int    // 0: no server CPU figures

	// Versus, when set, is the B side of an ABAB run: another target on
	// the same server, reached with VersusToken (default Token).
	Versus      *Target
	VersusToken string
	Block       int // objects per block in ABAB, default 10 envelopes

	HTTPClient *http.Client
}

// Target names a collection.
type Target struct{ Root, Collection string }

// Span is what one window or one side of an ABAB run measured.
type Span struct {
	From, To   int // object counts of the side before and after
	Duration   time.Duration
	PerSec     float64
	CPU        time.Duration // server CPU (user+system); 0 when not measured
	CPUPerObj  time.Duration
	Envelopes  int
	LoadBefore float64 // 1-minute load average when the span started (-1: unknown)
}

// IngestResult is what an Ingest run measured. In a fill, Windows holds
// every window and Ratio is the last window's rate over the first's. In
// ABAB, A and B are the two sides' totals and Ratio is B's wall time per
// object over A's (1.10 means B is 10 % dearer); CPURatio likewise for
// server CPU.
type IngestResult struct {
	Windows  []Span
	A, B     Span
	Ratio    float64
	CPURatio float64
}

func (in Ingest) withDefaults() Ingest {
	if in.Objects <= 0 {
		in.Objects = 100000
	}
	if in.EnvelopeSize <= 0 {
		in.EnvelopeSize = 1000
	}
	if in.Window <= 0 {
		in.Window = max(in.Objects/10, in.EnvelopeSize)
	}
	if in.Block <= 0 {
		in.Block = 10 * in.EnvelopeSize
	}
	if in.Seed == 0 {
		in.Seed = uint64(time.Now().UnixNano())
	}
	if in.VersusToken == "" {
		in.VersusToken = in.Token
	}
	return in
}

// side is one target being filled.
type side struct {
	c          *client.Client
	root, coll string
	gen        *indicatorGen
	sent       int
}

// post sends the next n objects of s in envelopes and returns the wall
// time spent in requests and the number of envelopes. Generating the
// objects is not timed.
func (s *side) post(ctx context.Context, n, envelope int) (time.Duration, int, error) {
	var spent time.Duration
	envs := 0
	for n > 0 {
		k := min(n, envelope)
		objs := make([]json.RawMessage, k)
		for i := range objs {
			objs[i] = s.gen.object(s.sent + i)
		}
		t0 := time.Now()
		st, err := s.c.AddObjects(ctx, s.root, s.coll, objs)
		spent += time.Since(t0)
		if err != nil {
			return spent, envs, fmt.Errorf("bench: ingest after %d objects: %w", s.sent, err)
		}
		if !st.Complete() {
			return spent, envs, fmt.Errorf("bench: ingest after %d objects: the server answered %q; only complete statuses are measured", s.sent, st.Status)
		}
		if st.FailureCount > 0 || st.SuccessCount != k {
			return spent, envs, fmt.Errorf("bench: ingest after %d objects: %d of %d refused (%s)", s.sent, st.FailureCount, k, firstFailure(st))
		}
		s.sent += k
		n -= k
		envs++
	}
	return spent, envs, nil
}

func firstFailure(st *client.Status) string {
	if len(st.Failures) > 0 {
		return st.Failures[0].ID + ": " + st.Failures[0].Message
	}
	return "no failure listed"
}

// Run executes the fill or the ABAB run and prints the report to w.
func (in Ingest) Run(ctx context.Context, w io.Writer) (IngestResult, error) {
	in = in.withDefaults()
	c, _, err := newClient(in.BaseURL, in.Token, in.User, in.Password, in.HTTPClient, false)
	if err != nil {
		return IngestResult{}, err
	}
	root, coll, err := resolveTarget(ctx, c, in.Root, in.Collection)
	if err != nil {
		return IngestResult{}, err
	}
	a := &side{c: c, root: root, coll: coll, gen: newIndicatorGen(in.Seed)}
	cpu := func() time.Duration {
		if in.ServerPID == 0 {
			return 0
		}
		d, err := processCPU(in.ServerPID)
		if err != nil {
			return 0
		}
		return d
	}
	if in.ServerPID != 0 {
		if _, err := processCPU(in.ServerPID); err != nil {
			return IngestResult{}, fmt.Errorf("bench: server CPU of pid %d: %w", in.ServerPID, err)
		}
	}
	if in.Versus == nil {
		fmt.Fprintf(w, "ingest fill: %s root=%s collection=%s objects=%d envelope=%d window=%d seed=%d\n",
			c.BaseURL(), root, coll, in.Objects, in.EnvelopeSize, in.Window, in.Seed)
		fmt.Fprintf(w, "%-19s %10s %12s %8s\n", "window", "objects/s", "server µs/obj", "load1")
		var res IngestResult
		for a.sent < in.Objects {
			sp := Span{From: a.sent, LoadBefore: loadAverage()}
			c0 := cpu()
			d, envs, err := a.post(ctx, min(in.Window, in.Objects-a.sent), in.EnvelopeSize)
			if err != nil {
				return res, err
			}
			sp.finish(a.sent, d, cpu()-c0, envs)
			res.Windows = append(res.Windows, sp)
			sp.print(w, fmt.Sprintf("%d–%d", sp.From, sp.To))
		}
		all := Span{To: a.sent}
		for _, sp := range res.Windows {
			all.Duration += sp.Duration
			all.CPU += sp.CPU
			all.Envelopes += sp.Envelopes
		}
		all.finish(a.sent, all.Duration, all.CPU, all.Envelopes)
		res.A = all
		if first := res.Windows[0].PerSec; first > 0 {
			res.Ratio = res.Windows[len(res.Windows)-1].PerSec / first
		}
		fmt.Fprintf(w, "ingest overall: %d objects, %.0f objects/s", all.To, all.PerSec)
		if all.CPU > 0 {
			fmt.Fprintf(w, ", server CPU %.1f µs/object", float64(all.CPUPerObj)/float64(time.Microsecond))
		}
		fmt.Fprintf(w, "; last window / first = %.2f\n", res.Ratio)
		return res, nil
	}

	bc, _, err := newClient(in.BaseURL, in.VersusToken, in.User, in.Password, in.HTTPClient, false)
	if err != nil {
		return IngestResult{}, err
	}
	broot, bcoll, err := resolveTarget(ctx, bc, in.Versus.Root, in.Versus.Collection)
	if err != nil {
		return IngestResult{}, err
	}
	// Another seed, so that B's objects differ from A's in id and content.
	b := &side{c: bc, root: broot, coll: bcoll, gen: newIndicatorGen(in.Seed ^ 0x5ca1ab1e)}
	fmt.Fprintf(w, "ingest ABAB: %s A=%s/%s B=%s/%s objects=%d per side, block=%d envelope=%d seed=%d\n",
		c.BaseURL(), root, coll, broot, bcoll, in.Objects, in.Block, in.EnvelopeSize, in.Seed)
	var res IngestResult
	res.A.LoadBefore, res.B.LoadBefore = loadAverage(), loadAverage()
	type half struct {
		s  *side
		sp *Span
	}
	for a.sent < in.Objects || b.sent < in.Objects {
		for _, h := range []half{{a, &res.A}, {b, &res.B}} {
			n := min(in.Block, in.Objects-h.s.sent)
			if n <= 0 {
				continue
			}
			c0 := cpu()
			d, envs, err := h.s.post(ctx, n, in.EnvelopeSize)
			if err != nil {
				return res, err
			}
			h.sp.Duration += d
			h.sp.CPU += cpu() - c0
			h.sp.Envelopes += envs
		}
	}
	res.A.finish(a.sent, res.A.Duration, res.A.CPU, res.A.Envelopes)
	res.B.finish(b.sent, res.B.Duration, res.B.CPU, res.B.Envelopes)
	fmt.Fprintf(w, "%-19s %10s %12s %8s\n", "side", "objects/s", "server µs/obj", "load1")
	res.A.print(w, "A "+coll[:min(len(coll), 17)])
	res.B.print(w, "B "+bcoll[:min(len(bcoll), 17)])
	if res.A.PerSec > 0 && res.B.PerSec > 0 {
		res.Ratio = res.A.PerSec / res.B.PerSec
	}
	if res.A.CPUPerObj > 0 && res.B.CPUPerObj > 0 {
		res.CPURatio = float64(res.B.CPUPerObj) / float64(res.A.CPUPerObj)
	}
	fmt.Fprintf(w, "B costs %+.1f %% wall time per object against A", 100*(res.Ratio-1))
	if res.CPURatio > 0 {
		fmt.Fprintf(w, ", %+.1f %% server CPU", 100*(res.CPURatio-1))
	}
	fmt.Fprintln(w)
	return res, nil
}

func (sp *Span) finish(to int, d, cpu time.Duration, envs int) {
	sp.To, sp.Duration, sp.CPU, sp.Envelopes = to, d, cpu, envs
	if n := sp.To - sp.From; n > 0 {
		sp.PerSec = perSec(n, d)
		sp.CPUPerObj = cpu / time.Duration(n)
	}
}

func (sp Span) print(w io.Writer, label string) {
	cpu := "-"
	if sp.CPU > 0 {
		cpu = fmt.Sprintf("%.1f", float64(sp.CPUPerObj)/float64(time.Microsecond))
	}
	load := "-"
	if sp.LoadBefore >= 0 {
		load = fmt.Sprintf("%.1f", sp.LoadBefore)
	}
	fmt.Fprintf(w, "%-19s %10.0f %12s %8s\n", label, sp.PerSec, cpu, load)
}

// processCPU is the user+system CPU time of process pid so far (Linux).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it are
	// counted from its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	// utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed /proc stat times")
	}
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// loadAverage is the 1-minute load average, or -1 when unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
