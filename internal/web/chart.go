package web

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
)

// Chart geometry, in SVG user units.
const (
	chartWidth     = 640
	chartHeight    = 264
	chartLeft      = 60 // room for y labels and the axis title
	chartRight     = 12
	chartTop       = 12
	chartBottom    = 48 // room for x labels and the axis title
	chartMaxPoints = 240
)

// chart is a server-rendered SVG step chart of a balance history: no
// script, so it works under a CSP without 'unsafe-inline' and without
// JavaScript at all.
type chart struct {
	Width, Height          int
	Left, Right, Top, Base float64 // plot area edges
	Series                 []series
	YTicks, XTicks         []tick
	XTitle                 string // the x axis's unit and the part of the time its labels leave out
	Points                 int    // data points drawn per series
}

type series struct {
	Name   string // legend text
	Class  string // CSS class: colour
	Path   string // polyline points, "x,y x,y …"
	Points []point
}

type point struct {
	X, Y  string // formatted coordinates
	Value int64
	Title string // tooltip, e.g. "2026-01-02 10:00 UTC: 12"
}

type tick struct {
	Pos    string
	Label  string
	Anchor string // SVG text-anchor, so edge labels stay inside the chart
	Mark   string // where the tick mark ends, outside the plot
}

// tickFormats go from coarse to fine; each names what its labels leave out.
var tickFormats = []struct{ layout, title string }{
	{"2006-01-02", "date (UTC)"},
	{"Jan 2 15:04", "time (UTC)"},
	{"15:04", "time (UTC) on %s"},
	{"15:04:05", "time (UTC) on %s"},
	{"15:04:05.000", "time (UTC) on %s"},
	{"05.000000", "seconds after %s UTC"},
}

// timeTicks places up to five ticks from t0 to t1 over width units starting
// at left, labelled with the coarsest format under which every label
// differs, so no two ticks read alike (a span under a second gets
// milliseconds rather than two equal "15:04:05").
func timeTicks(t0, t1 time.Time, left, width float64) ([]tick, string) {
	t0, t1 = t0.UTC(), t1.UTC()
	n := 5
	span := t1.Sub(t0)
	if span <= 0 {
		n = 1
	}
	times := make([]time.Time, n)
	for i := range n {
		if n == 1 {
			times[i] = t0
			continue
		}
		times[i] = t0.Add(time.Duration(float64(span) * float64(i) / float64(n-1)))
	}
	sameDay := t0.Format("2006-01-02") == t1.Format("2006-01-02")
	for fi, f := range tickFormats {
		if fi >= 2 && !sameDay {
			break // finer formats drop the date, which then differs
		}
		if fi == 0 && span < 72*time.Hour && n > 1 {
			continue // whole days say nothing about a short span
		}
		labels := make([]string, n)
		distinct := map[string]bool{}
		for i, t := range times {
			labels[i] = t.Format(f.layout)
			distinct[labels[i]] = true
		}
		if len(distinct) < n && fi < len(tickFormats)-1 {
			continue
		}
		title := f.title
		if strings.Contains(title, "%s") {
			ref := t0.Format("2006-01-02")
			if f.layout == "05.000000" {
				ref = t0.Format("2006-01-02 15:04")
			}
			title = fmt.Sprintf(title, ref)
		}
		out := make([]tick, n)
		for i := range n {
			anchor := "middle"
			switch {
			case n == 1:
			case i == 0:
				anchor = "start"
			case i == n-1:
				anchor = "end"
			}
			pos := left
			if n > 1 {
				pos = left + width*float64(i)/float64(n-1)
			} else {
				pos = left + width/2
			}
			out[i] = tick{Pos: coord(pos), Label: labels[i], Anchor: anchor}
		}
		return out, title
	}
	// Different days, but the labels with dates and minutes repeat:
	// fall back to full timestamps.
	out := make([]tick, n)
	for i, t := range times {
		out[i] = tick{Pos: coord(left + width*float64(i)/float64(max(n-1, 1))), Label: t.Format("01-02 15:04:05"), Anchor: "middle"}
	}
	return out, "time (UTC)"
}

func coord(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// buildChart lays out the three series of a balance history: what the
// caller contributed, what the other side contributed and what was
// released to the caller. It returns false when there is nothing to draw.
func buildChart(history []exchange.BalancePoint) (chart, bool) {
	if len(history) == 0 {
		return chart{}, false
	}
	history = downsample(history, chartMaxPoints)
	c := chart{Width: chartWidth, Height: chartHeight, Left: chartLeft, Right: chartWidth - chartRight,
		Top: chartTop, Base: chartHeight - chartBottom, Points: len(history)}
	var top int64 = 1
	for _, p := range history {
		top = max(top, p.Contributed, p.CounterpartContributed, p.Released)
	}
	step := niceStep(top)
	top = (top + step - 1) / step * step
	t0, t1 := history[0].Time, history[len(history)-1].Time
	span := t1.Sub(t0)
	x := func(i int) float64 {
		if span <= 0 {
			// One instant (or one point): spread by position instead.
			if len(history) == 1 {
				return (c.Left + c.Right) / 2
			}
			return c.Left + (c.Right-c.Left)*float64(i)/float64(len(history)-1)
		}
		return c.Left + (c.Right-c.Left)*float64(history[i].Time.Sub(t0))/float64(span)
	}
	y := func(v int64) float64 { return c.Base - (c.Base-c.Top)*float64(v)/float64(top) }
	for v := int64(0); v <= top; v += step {
		c.YTicks = append(c.YTicks, tick{Pos: coord(y(v)), Label: strconv.FormatInt(v, 10)})
	}
	c.XTicks, c.XTitle = timeTicks(t0, t1, c.Left, c.Right-c.Left)
	for i := range c.XTicks {
		c.XTicks[i].Mark = coord(c.Base + 5)
	}
	for i := range c.YTicks {
		c.YTicks[i].Mark = coord(c.Left - 5)
	}
	if span <= 0 && len(history) > 1 {
		// All at one instant: one label, at the middle.
		c.XTicks = []tick{{Pos: coord((c.Left + c.Right) / 2), Label: c.XTicks[0].Label, Anchor: "middle", Mark: coord(c.Base + 5)}}
	}
	defs := []struct {
		name, class string
		value       func(exchange.BalancePoint) int64
	}{
		{"You contributed", "mine", func(p exchange.BalancePoint) int64 { return p.Contributed }},
		{"They contributed", "theirs", func(p exchange.BalancePoint) int64 { return p.CounterpartContributed }},
		{"Released to you", "released", func(p exchange.BalancePoint) int64 { return p.Released }},
	}
	for _, d := range defs {
		s := series{Name: d.name, Class: d.class}
		var path strings.Builder
		for i, p := range history {
			v := d.value(p)
			px, py := coord(x(i)), coord(y(v))
			if i > 0 {
				// A step: the value holds until the entry that changed it.
				fmt.Fprintf(&path, " %s,%s", px, coord(y(d.value(history[i-1]))))
			}
			if i > 0 {
				path.WriteByte(' ')
			}
			fmt.Fprintf(&path, "%s,%s", px, py)
			s.Points = append(s.Points, point{X: px, Y: py, Value: v,
				Title: fmt.Sprintf("%s — %s: %d", p.Time.UTC().Format("2006-01-02 15:04:05 UTC"), d.name, v)})
		}
		s.Path = path.String()
		c.Series = append(c.Series, s)
	}
	return c, true
}

// downsample keeps at most n points, always the last one, so the chart's
// size does not grow with the ledger.
func downsample(h []exchange.BalancePoint, n int) []exchange.BalancePoint {
	if len(h) <= n {
		return h
	}
	out := make([]exchange.BalancePoint, 0, n)
	for i := range n {
		// The last point of each of n equal buckets.
		out = append(out, h[(i+1)*len(h)/n-1])
	}
	return out
}

// niceStep returns a 1-2-5 step giving at most about five ticks up to top.
func niceStep(top int64) int64 {
	for mag := int64(1); ; mag *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if s := m * mag; (top+s-1)/s <= 5 {
				return s
			}
		}
	}
}

// ago renders a duration for people: "3 minutes", "2 hours".
func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return plural(int64(d/time.Second), "second")
	case d < time.Hour:
		return plural(int64(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int64(d/time.Hour), "hour")
	}
	return plural(int64(d/(24*time.Hour)), "day")
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.FormatInt(n, 10) + " " + unit + "s"
}
