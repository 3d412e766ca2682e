package web

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
)

func history(n int, spacing time.Duration) []exchange.BalancePoint {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var h []exchange.BalancePoint
	for i := range n {
		h = append(h, exchange.BalancePoint{Index: int64(i), Time: t0.Add(time.Duration(i) * spacing),
			Contributed: int64(3 * (i + 1)), CounterpartContributed: int64(i + 1), Released: int64(min(2*i, i+1))})
	}
	return h
}

func TestBuildChart(t *testing.T) {
	cases := []struct {
		name   string
		h      []exchange.BalancePoint
		ok     bool
		points int
	}{
		{"empty", nil, false, 0},
		{"one point", history(1, time.Minute), true, 1},
		{"one instant", history(4, 0), true, 4},
		{"spread over time", history(50, time.Minute), true, 50},
		{"downsampled", history(5000, time.Second), true, chartMaxPoints},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := buildChart(tc.h)
			if ok != tc.ok {
				t.Fatalf("ok = %v", ok)
			}
			if !ok {
				return
			}
			if c.Points != tc.points || len(c.Series) != 3 {
				t.Fatalf("%d points in %d series, want %d in 3", c.Points, len(c.Series), tc.points)
			}
			for _, s := range c.Series {
				if len(s.Points) != tc.points {
					t.Fatalf("%s: %d points", s.Class, len(s.Points))
				}
				// Every coordinate lies in the plot area; cumulative values
				// never fall, so y (downwards) never rises.
				prevY := c.Base + 1
				for _, p := range s.Points {
					x, _ := strconv.ParseFloat(p.X, 64)
					y, _ := strconv.ParseFloat(p.Y, 64)
					if x < c.Left-0.05 || x > c.Right+0.05 || y < c.Top-0.05 || y > c.Base+0.05 {
						t.Fatalf("%s: point (%v, %v) outside the plot", s.Class, x, y)
					}
					if y > prevY+0.05 {
						t.Fatalf("%s: cumulative series falls", s.Class)
					}
					prevY = y
				}
				// A step path has two vertices per point after the first.
				if got := len(strings.Fields(s.Path)); got != 2*tc.points-1 {
					t.Fatalf("%s: path has %d vertices, want %d", s.Class, got, 2*tc.points-1)
				}
			}
			// The last drawn point is always the latest standing.
			last := tc.h[len(tc.h)-1]
			if got := c.Series[0].Points[tc.points-1].Value; got != last.Contributed {
				t.Fatalf("last contributed %d, want %d", got, last.Contributed)
			}
			if top, _ := strconv.Atoi(c.YTicks[len(c.YTicks)-1].Label); int64(top) < last.Contributed {
				t.Fatalf("y axis tops at %d below %d", top, last.Contributed)
			}
		})
	}
}

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct{ top, step int64 }{{1, 1}, {5, 1}, {6, 2}, {10, 2}, {11, 5}, {25, 5}, {26, 10}, {1000, 200}, {1001, 500}} {
		if got := niceStep(tc.top); got != tc.step {
			t.Errorf("niceStep(%d) = %d, want %d", tc.top, got, tc.step)
		}
	}
}

func TestAgo(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{-time.Second, "just now"}, {time.Second, "1 second"}, {90 * time.Second, "1 minute"}, {2 * time.Hour, "2 hours"}, {72 * time.Hour, "3 days"}} {
		if got := ago(tc.d); got != tc.want {
			t.Errorf("ago(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// Tick labels never read alike, whatever the span: the demo's history
// lasts under a second, a long agreement a year.
func TestTimeTicksDistinct(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 15, 30, 0, time.UTC)
	for _, span := range []time.Duration{0, 300 * time.Millisecond, 4 * time.Second, 3 * time.Minute, 5 * time.Hour, 50 * time.Hour, 400 * 24 * time.Hour, 1500 * time.Microsecond} {
		ticks, title := timeTicks(t0, t0.Add(span), 60, 568)
		seen := map[string]bool{}
		for _, tk := range ticks {
			if seen[tk.Label] {
				t.Errorf("span %s: label %q repeats in %+v", span, tk.Label, ticks)
			}
			seen[tk.Label] = true
		}
		if want := 5; span > 0 && len(ticks) != want {
			t.Errorf("span %s: %d ticks, want %d", span, len(ticks), want)
		}
		if title == "" {
			t.Errorf("span %s: no axis title", span)
		}
	}
	ticks, title := timeTicks(t0, t0.Add(300*time.Millisecond), 60, 568)
	if ticks[0].Label != "10:15:30.000" || ticks[4].Label != "10:15:30.300" || title != "time (UTC) on 2026-12-03" {
		t.Errorf("a 300 ms span reads %q … %q, %q", ticks[0].Label, ticks[4].Label, title)
	}
}

// The chart scales with the page (no fixed size) and has both axes with
// their titles.
func TestChartIsResponsive(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.signIn(f.tokA)
	_, page := b.do("GET", "/ui/agreements/"+f.agreementID, nil)
	start := strings.Index(page, `<svg id="balance-chart"`)
	if start < 0 {
		t.Fatal("no chart")
	}
	tag := page[start : start+strings.Index(page[start:], ">")]
	if strings.Contains(tag, ` width=`) || strings.Contains(tag, ` height=`) || !strings.Contains(tag, "viewBox=") {
		t.Fatalf("the chart has a fixed size: %s", tag)
	}
	svg := page[start : start+strings.Index(page[start:], "</svg>")]
	if strings.Count(svg, `class="label xtick"`) < 2 || !strings.Contains(svg, "objects (cumulative)") || !strings.Contains(svg, "time (UTC)") {
		t.Fatalf("the chart lacks x ticks or axis titles:\n%s", svg)
	}
}
