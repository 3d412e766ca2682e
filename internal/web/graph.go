package web

import (
	"math"
	"net/http"
	"slices"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/stix"
	"github.com/parley-cti/parley/internal/store"
)

// The object page's graph: the object in the middle, around it what it
// refers to and what refers to it (relationships drawn as one edge between
// their two ends), drawn on the server as SVG. Every neighbour is looked
// up through exchange.Intelligence, so the graph holds only what the party
// reads; an id it cannot read is drawn as such, unnamed and unlinked
// (the id itself is in an object the party reads).

// Bounds of the graph.
const (
	graphMaxNodes = 24  // neighbours drawn; the rest are listed only
	graphMaxRefs  = 100 // ids looked up of what the object refers to
	graphMaxIn    = 50  // objects read that refer to it
)

type graphNode struct {
	summary
	Known      bool // the party reads it
	Center     bool
	X, Y       float64
	LX, LY     float64 // label position
	Label      string  // name, cut
	TypeLabel  string
	TypeClass  string
	LabelAnchr string
}

type graphEdge struct {
	X1, Y1, X2, Y2 float64
	MX, MY         float64
	Label          string
}

type graph struct {
	Width, Height int
	Nodes         []graphNode
	Edges         []graphEdge
	Hidden        int // neighbours not drawn
	Empty         bool
}

// relationships builds the graph and the list of related objects of obj.
func (d *Dashboard) relationships(r *http.Request, s session, obj store.Object, center summary) (graph, []relatedRow, error) {
	ctx := r.Context()
	type link struct {
		other    string // the neighbour's id
		label    string
		outgoing bool // from the object to the neighbour
	}
	var links []link
	var want []string // ids to look up
	var markings []string
	if o, err := stix.ParseObject(obj.Raw); err == nil {
		markings = o.AllMarkings()
		for _, ref := range o.Refs {
			if ref == obj.ID || slices.Contains(markings, ref) || slices.Contains(want, ref) || len(want) == graphMaxRefs {
				continue
			}
			want = append(want, ref)
			label := "refers to"
			if obj.Type == "relationship" {
				label = "relationship end"
			}
			links = append(links, link{other: ref, label: label, outgoing: true})
		}
	}
	in, err := d.o.Exchange.Intelligence(ctx, s.principal, exchange.IntelQuery{Search: store.SearchQuery{Refs: []string{obj.ID}, Limit: graphMaxIn}})
	if err != nil {
		return graph{}, nil, err
	}
	known := map[string]summary{}
	seenIn := map[string]bool{}
	for _, x := range in.Objects {
		if seenIn[x.ID] || x.ID == obj.ID {
			continue
		}
		seenIn[x.ID] = true
		sum, f := summarize(x.Object)
		known[x.ID] = sum
		if x.Type == "relationship" && (f.SourceRef == obj.ID || f.TargetRef == obj.ID) {
			other, out := f.TargetRef, true
			if f.TargetRef == obj.ID {
				other, out = f.SourceRef, false
			}
			if other != obj.ID && other != "" {
				links = append(links, link{other: other, label: f.RelationshipType, outgoing: out})
				if !slices.Contains(want, other) && len(want) < graphMaxRefs+graphMaxIn {
					want = append(want, other)
				}
				continue
			}
		}
		label := "refers to it"
		switch x.Type {
		case "report", "grouping", "note", "opinion":
			label = "contains it"
		case "sighting":
			label = "sighting"
		}
		links = append(links, link{other: x.ID, label: label, outgoing: false})
	}
	if len(want) > 0 {
		pg, err := d.o.Exchange.Intelligence(ctx, s.principal, exchange.IntelQuery{Search: store.SearchQuery{IDs: want, Limit: len(want) * 3}})
		if err != nil {
			return graph{}, nil, err
		}
		for _, o := range pg.Objects {
			if _, ok := known[o.ID]; !ok {
				known[o.ID], _ = summarize(o.Object)
			}
		}
	}
	// One node per neighbour, in the order found.
	var related []relatedRow
	var order []string
	byID := map[string][]link{}
	for _, l := range links {
		if _, ok := byID[l.other]; !ok {
			order = append(order, l.other)
		}
		byID[l.other] = append(byID[l.other], l)
	}
	g := graph{Width: 760, Height: 520}
	cx, cy := float64(g.Width)/2, float64(g.Height)/2
	g.Nodes = append(g.Nodes, node(center, true, cx, cy, cy))
	g.Nodes[0].Center = true
	drawn := min(len(order), graphMaxNodes)
	g.Hidden = len(order) - drawn
	g.Empty = len(order) == 0
	for i, id := range order {
		sum, ok := known[id]
		if !ok {
			sum = summary{ID: id, Type: typeOf(id), Name: "not among what you read"}
		}
		for _, l := range byID[id] {
			how := "→ " + l.label
			if !l.outgoing {
				how = "← " + l.label
			}
			related = append(related, relatedRow{summary: sum, How: how})
		}
		if i >= drawn {
			continue
		}
		a := 2*math.Pi*float64(i)/float64(drawn) - math.Pi/2
		x, y := cx+300*math.Cos(a), cy+190*math.Sin(a)
		n := node(sum, ok, x, y, cy)
		g.Nodes = append(g.Nodes, n)
		l := byID[id][0]
		e := graphEdge{X1: cx, Y1: cy, X2: x, Y2: y, MX: (cx + x) / 2, MY: (cy+y)/2 - 4, Label: l.label}
		if !l.outgoing {
			e.X1, e.Y1, e.X2, e.Y2 = x, y, cx, cy
		}
		// Stop the line at the circle's edge so the arrow shows.
		e.X1, e.Y1, e.X2, e.Y2 = trim(e.X1, e.Y1, e.X2, e.Y2, 24)
		g.Edges = append(g.Edges, e)
	}
	return g, related, nil
}

func node(s summary, known bool, x, y, cy float64) graphNode {
	n := graphNode{summary: s, Known: known, X: round1(x), Y: round1(y), LX: round1(x), LY: round1(y + 38),
		Label: shorten(s.Name, 26), TypeLabel: s.Type, TypeClass: typeClass(s.Type), LabelAnchr: "middle"}
	if y < cy-1 {
		n.LY = round1(y - 30)
	}
	return n
}

// trim shortens the segment by r at both ends.
func trim(x1, y1, x2, y2, r float64) (float64, float64, float64, float64) {
	dx, dy := x2-x1, y2-y1
	l := math.Hypot(dx, dy)
	if l <= 2*r {
		return round1(x1), round1(y1), round1(x2), round1(y2)
	}
	ux, uy := dx/l, dy/l
	return round1(x1 + ux*r), round1(y1 + uy*r), round1(x2 - ux*r), round1(y2 - uy*r)
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func typeOf(id string) string {
	for i := 0; i+1 < len(id); i++ {
		if id[i] == '-' && id[i+1] == '-' {
			return id[:i]
		}
	}
	return "object"
}

// typeClass groups STIX types into a few colours.
func typeClass(t string) string {
	switch t {
	case "indicator":
		return "t-indicator"
	case "malware", "tool", "malware-analysis":
		return "t-malware"
	case "threat-actor", "intrusion-set", "campaign", "identity":
		return "t-actor"
	case "relationship", "sighting":
		return "t-relation"
	case "report", "grouping", "note", "opinion":
		return "t-report"
	}
	return "t-other"
}
