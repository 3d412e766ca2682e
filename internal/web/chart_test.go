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
