package store

import (
	"slices"
	"strings"
	"time"
)

// What both backends share of Credits.Mark: deciding, from the marks
// already stored, which marks change and what that does to the tallies.
// Only the reading and writing of rows differs between them.

// MarkRow is the stored mark of one credited contribution.
type MarkRow struct {
	ObjectID string
	Ord      int64
	Type     string
	TLP      int
	Version  int64 // microseconds since the epoch
	Exists   bool  // a mark is stored (false: only the credit is)
}

// TallyKey names one stored tally row of an agreement and party.
type TallyKey struct {
	Block int64
	Type  string
	TLP   int
}

// PlanMarks applies marks, in order, to cur (the credited contributions
// among the marks' objects, by object id, with their stored marks) and
// returns the rows to write, in first-changed order, and the change of
// each tally. A mark of an object not in cur is ignored, and so is one not
// newer than the stored mark.
func PlanMarks(cur map[string]*MarkRow, marks []Mark) ([]*MarkRow, map[TallyKey]int64) {
	var changed []*MarkRow
	seen := map[string]bool{}
	delta := map[TallyKey]int64{}
	for _, m := range marks {
		r := cur[m.ObjectID]
		if r == nil {
			continue
		}
		v := micros(m.Version)
		if r.Exists && v <= r.Version {
			continue
		}
		if r.Exists {
			delta[TallyKey{r.Ord / TallyBlock, r.Type, r.TLP}]--
		}
		delta[TallyKey{r.Ord / TallyBlock, m.Type, m.TLP}]++
		r.Type, r.TLP, r.Version, r.Exists = m.Type, m.TLP, v, true
		if !seen[m.ObjectID] {
			seen[m.ObjectID] = true
			changed = append(changed, r)
		}
	}
	for k, n := range delta {
		if n == 0 {
			delete(delta, k)
		}
	}
	return changed, delta
}

// CreditMarks returns the marks of the contributions that earned credit
// in res (Contribute's outcome for items) and carry a Type, with the
// change they make to the tallies (CreditDelta): each is a new credit, so
// nothing was marked for it before and no stored mark needs reading.
func CreditMarks(items []Contribution, res []Credited) ([]*MarkRow, map[TallyKey]int64) {
	var rows []*MarkRow
	for i, it := range items {
		if !marked(it, res[i]) {
			continue
		}
		rows = append(rows, &MarkRow{ObjectID: it.ObjectID, Ord: res[i].Ord, Type: it.Type, TLP: it.TLP, Version: micros(it.Version), Exists: true})
	}
	return rows, CreditDelta(items, res)
}

// marked says whether a contribution's mark is counted: it earned credit
// and has a type.
func marked(it Contribution, r Credited) bool { return r.Ord != 0 && it.Type != "" }

// CreditDelta is the change to the tallies that the marks of the
// contributions credited in res make, for a store that keeps the marks
// in the credit rows and needs no mark rows (SQLite).
func CreditDelta(items []Contribution, res []Credited) map[TallyKey]int64 {
	delta := map[TallyKey]int64{}
	for i, it := range items {
		if !marked(it, res[i]) {
			continue
		}
		delta[TallyKey{res[i].Ord / TallyBlock, it.Type, it.TLP}]++
	}
	return delta
}

// micros is t in microseconds since the epoch, 0 for the zero time, as
// marks store versions.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// TallyBounds returns, for Credits.Tally up to upTo, the blocks to sum
// whole (those below the returned block) and the first ordinal of the
// partial block whose marks are counted one by one (through upTo).
func TallyBounds(upTo int64) (wholeBelow, partialFrom int64) {
	k := (upTo + 1) / TallyBlock
	return k, k * TallyBlock
}

// SumTallies adds up rows of (type, level, count), dropping zeros, in
// order of type then level.
func SumTallies(rows []Tally) []Tally {
	type key struct {
		t string
		l int
	}
	m := map[key]int64{}
	var order []key
	for _, r := range rows {
		k := key{r.Type, r.TLP}
		if _, ok := m[k]; !ok {
			order = append(order, k)
		}
		m[k] += r.N
	}
	out := make([]Tally, 0, len(order))
	for _, k := range order {
		if m[k] != 0 {
			out = append(out, Tally{Type: k.t, TLP: k.l, N: m[k]})
		}
	}
	sortTallies(out)
	return out
}

func sortTallies(ts []Tally) {
	slices.SortFunc(ts, func(a, b Tally) int {
		if c := strings.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		return a.TLP - b.TLP
	})
}
