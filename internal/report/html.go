package report

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html templates/*.css
var templateFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"name": func(r *View, id string) string { return r.Name(id) },
}).ParseFS(templateFS, "templates/*.html"))

// View is a report laid out for people: names for ids, charts as SVG
// geometry. It is what the HTML templates (this package's, for the CLI's
// file, and the dashboard's page) render.
type View struct {
	*Report
	From, To   time.Time
	Series     LineChart
	TypeBars   BarChart
	TLPBars    BarChart
	Agreed     []Finding // texts with names for ids
	Concerns   []Finding
	Generated  time.Time
	SignedByAB [2]bool
}

// Name is a party's display name.
func (v *View) Name(id string) string {
	if n := v.Names[id]; n != "" {
		return n
	}
	return id
}

// NewView lays r out.
func NewView(r *Report, generated time.Time) *View {
	v := &View{Report: r, Generated: generated.UTC()}
	v.From, _ = time.Parse(time.RFC3339Nano, r.Facts.From)
	v.To, _ = time.Parse(time.RFC3339Nano, r.Facts.To)
	rename := func(fs []Finding) []Finding {
		out := make([]Finding, len(fs))
		for i, f := range fs {
			for _, id := range r.Facts.Parties {
				f.Text = strings.ReplaceAll(f.Text, id, v.Name(id))
			}
			out[i] = f
		}
		return out
	}
	v.Agreed, v.Concerns = rename(r.Facts.Agreed), rename(r.Facts.Concerns)
	for i, p := range r.Facts.Parties {
		v.SignedByAB[i] = r.SignedBy(p)
	}
	v.Series = lineChart(v)
	v.TypeBars = barChart(v, func(s Side) map[string]int64 { return s.ByType }, nil)
	v.TLPBars = barChart(v, func(s Side) map[string]int64 { return s.ByTLP }, TLPLabels())
	for i := range v.TLPBars.Rows { // TLP's own colours, so a glance reads them right
		for j := range v.TLPBars.Rows[i].Segments {
			v.TLPBars.Rows[i].Segments[j].Colour = tlpColours[v.TLPBars.Rows[i].Segments[j].Key]
		}
	}
	for i := range v.TLPBars.Legend {
		v.TLPBars.Legend[i].Colour = tlpColours[v.TLPBars.Legend[i].Key]
	}
	return v
}

// Body writes the report's HTML body (no <html>, no styles): sections,
// tables and SVG charts, with no script and no inline style, so that it
// renders under the dashboard's strict Content-Security-Policy.
func Body(w io.Writer, v *View) error { return templates.ExecuteTemplate(w, "body", v) }

// Standalone writes a complete HTML document of the report with its styles
// inline, for a file (`parley report --format html`) or for printing to PDF.
func Standalone(w io.Writer, v *View) error {
	css, err := templateFS.ReadFile("templates/report.css")
	if err != nil {
		return err
	}
	return templates.ExecuteTemplate(w, "standalone", struct {
		*View
		CSS template.CSS
	}{v, template.CSS(css)})
}

// Stylesheet returns the report's CSS, for the dashboard to serve.
func Stylesheet() []byte {
	b, _ := templateFS.ReadFile("templates/report.css")
	return b
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH                       = 720, 260
	padLeft, padRight, padTop, padBottom = 56, 16, 16, 40
	barW, barLeft, barRowH               = 720, 250, 34
)

// palette colours series and stacks; SVG presentation attributes, not
// inline styles, so the CSP allows them.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

// tlpColours follow FIRST's TLP 2.0 colours where a white page allows.
var tlpColours = map[string]string{"TLP:CLEAR": "#9e9e9e", "TLP:GREEN": "#33a02c", "TLP:AMBER": "#ffc000",
	"TLP:AMBER+STRICT": "#e07000", "TLP:RED": "#d62728", Unmarked: "#cfcfcf"}

// LineChart is a time series with real axes.
type LineChart struct {
	W, H                     int
	Left, Right, Top, Bottom float64
	YTicks, XTicks           []Tick
	Lines                    []Line
	Empty                    bool
}

// Tick is an axis tick.
type Tick struct {
	Pos   float64
	Label string
}

// Line is one series.
type Line struct {
	Name, Colour, Points string
	Last                 int64
	Dashed               bool
}

func lineChart(v *View) LineChart {
	c := LineChart{W: chartW, H: chartH, Left: padLeft, Right: chartW - padRight, Top: padTop, Bottom: chartH - padBottom}
	pts := v.Facts.Series
	if len(pts) == 0 {
		c.Empty = true
		return c
	}
	var top int64 = 1
	for _, p := range pts {
		top = max(top, p.Contributed[0], p.Contributed[1], p.Released[0], p.Released[1])
	}
	step := niceStep(top)
	top = (top + step - 1) / step * step
	span := v.To.Sub(v.From)
	x := func(t time.Time) float64 {
		return c.Left + (c.Right-c.Left)*float64(t.Sub(v.From))/float64(span)
	}
	y := func(n int64) float64 { return c.Bottom - (c.Bottom-c.Top)*float64(n)/float64(top) }
	for n := int64(0); n <= top; n += step {
		c.YTicks = append(c.YTicks, Tick{Pos: y(n), Label: strconv.FormatInt(n, 10)})
	}
	layout := "2006-01-02"
	if span <= 72*time.Hour {
		layout = "01-02 15:04"
	}
	for i := range 5 {
		t := v.From.Add(span * time.Duration(i) / 4)
		c.XTicks = append(c.XTicks, Tick{Pos: x(t), Label: t.Format(layout)})
	}
	A, B := v.Facts.Parties[0], v.Facts.Parties[1]
	defs := []struct {
		name   string
		val    func(Point) int64
		dashed bool
	}{
		{v.Name(A) + " contributed", func(p Point) int64 { return p.Contributed[0] }, false},
		{v.Name(B) + " contributed", func(p Point) int64 { return p.Contributed[1] }, false},
		{"released to " + v.Name(A), func(p Point) int64 { return p.Released[0] }, true},
		{"released to " + v.Name(B), func(p Point) int64 { return p.Released[1] }, true},
	}
	for i, d := range defs {
		var b strings.Builder
		prev := v.From
		var last int64
		for j, p := range pts {
			t, _ := time.Parse(time.RFC3339Nano, p.Time)
			n := d.val(p)
			if j == 0 {
				fmt.Fprintf(&b, "%.1f,%.1f", x(prev), y(n))
			}
			// A step: each point holds from its bucket's start to its end.
			fmt.Fprintf(&b, " %.1f,%.1f %.1f,%.1f", x(prev), y(n), x(t), y(n))
			prev, last = t, n
		}
		c.Lines = append(c.Lines, Line{Name: d.name, Colour: palette[[]int{0, 1, 0, 1}[i]], Points: b.String(), Last: last, Dashed: d.dashed})
	}
	return c
}

// BarChart is one horizontal stacked bar per direction of flow.
type BarChart struct {
	W, H   int
	Left   float64
	Rows   []BarRow
	Legend []Segment
	Ticks  []Tick
	Empty  bool
}

// BarRow is one bar.
type BarRow struct {
	Label    string
	Y, TextY float64
	Total    int64
	Segments []Segment
}

// Segment is one stack of a bar.
type Segment struct {
	Key    string
	Colour string
	X, W   float64
	N      int64
}

func barChart(v *View, of func(Side) map[string]int64, order []string) BarChart {
	keys := map[string]int64{}
	var top int64
	for _, s := range v.Facts.Sides {
		var tot int64
		for k, n := range of(s) {
			keys[k] += n
			tot += n
		}
		top = max(top, tot)
	}
	c := BarChart{W: barW, Left: barLeft, H: 2*barRowH + 40}
	if top == 0 {
		c.Empty = true
		return c
	}
	if order == nil {
		for k := range keys {
			order = append(order, k)
		}
		sort.Slice(order, func(i, j int) bool {
			if keys[order[i]] != keys[order[j]] {
				return keys[order[i]] > keys[order[j]]
			}
			return order[i] < order[j]
		})
	}
	colour := map[string]string{}
	for i, k := range order {
		colour[k] = palette[i%len(palette)]
		if keys[k] > 0 {
			c.Legend = append(c.Legend, Segment{Key: k, Colour: colour[k], N: keys[k]})
		}
	}
	step := niceStep(top)
	top = (top + step - 1) / step * step
	width := float64(barW-barLeft-padRight) - 40
	for n := int64(0); n <= top; n += step {
		c.Ticks = append(c.Ticks, Tick{Pos: barLeft + width*float64(n)/float64(top), Label: strconv.FormatInt(n, 10)})
	}
	parties := v.Facts.Parties
	for i, s := range v.Facts.Sides {
		row := BarRow{Label: v.Name(s.Party) + " → " + v.Name(parties[1-i]), Y: float64(8 + i*barRowH), TextY: float64(8+i*barRowH) + 17}
		x := float64(barLeft)
		m := of(s)
		for _, k := range order {
			if m[k] <= 0 {
				continue
			}
			w := width * float64(m[k]) / float64(top)
			row.Segments = append(row.Segments, Segment{Key: k, Colour: colour[k], X: x, W: w, N: m[k]})
			x += w
			row.Total += m[k]
		}
		c.Rows = append(c.Rows, row)
	}
	return c
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
