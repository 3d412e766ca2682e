package crash

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/ledger"
)

// objKey names one object version in one collection.
type objKey struct {
	coll, id, version string
}

// receipt is a ledger index the server handed out with an acknowledged
// write, and the entry it must point at.
type receipt struct {
	index   int64
	kind    ledger.Kind
	subject string
}

// ackedStatus is a status resource the server acknowledged.
type ackedStatus struct {
	party     *partyState
	root, id  string
	total     int
	successes int
}

// ackedSig is an agreement signature the server acknowledged.
type ackedSig struct {
	party    string
	action   agreement.Action
	signedAt time.Time
}

// model is what the harness knows the server acknowledged, and what it
// sent without an answer (which may or may not have landed). Workers of a
// life share it.
type model struct {
	mu       sync.Mutex
	acked    map[objKey]json.RawMessage
	order    []objKey // acked versions in the order they were acknowledged
	maybe    map[objKey]bool
	receipts []receipt
	statuses []ackedStatus
	sigs     []ackedSig
	posts    int
	steps    int           // acknowledged handover steps
	postTime time.Duration // summed latency of acknowledged POSTs
	unacked  int
	reads    int
}

func newModel() *model {
	return &model{acked: map[objKey]json.RawMessage{}, maybe: map[objKey]bool{}}
}

// ack records an acknowledged POST.
func (m *model) ack(coll string, objs []sent, st ackedStatus, rc receipt, took time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.posts++
	m.postTime += took
	for _, o := range objs {
		if !o.valid {
			continue
		}
		k := objKey{coll, o.id, o.version}
		if _, ok := m.acked[k]; !ok {
			m.acked[k] = o.raw
			m.order = append(m.order, k)
		}
	}
	m.statuses = append(m.statuses, st)
	m.receipts = append(m.receipts, rc)
}

// inflight records a POST whose answer never came: its valid objects may
// be stored.
func (m *model) inflight(coll string, objs []sent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unacked++
	for _, o := range objs {
		if o.valid {
			m.maybe[objKey{coll, o.id, o.version}] = true
		}
	}
}

func (m *model) ackSig(s ackedSig, rc receipt) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sigs = append(m.sigs, s)
	m.receipts = append(m.receipts, rc)
}

func (m *model) ackReceipt(rc receipt) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.receipts = append(m.receipts, rc)
	m.steps++
}

func (m *model) read() {
	m.mu.Lock()
	m.reads++
	m.mu.Unlock()
}

// sent is one object of a POST and what the server must do with it.
type sent struct {
	id, version string
	raw         json.RawMessage
	valid       bool // must be stored (new or duplicate); else refused
}

// Objects the workload sends. Every id embeds a counter that never repeats
// in a run, so ids of refused objects never collide with stored ones.
var created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func version(v int) string {
	return created.Add(time.Duration(v) * time.Second).Format("2006-01-02T15:04:05.000Z")
}

func uuid(n int64) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// indicator is a valid STIX 2.1 indicator, version v, with an optional
// marking.
func indicator(n int64, v int, marking string) sent {
	id := "indicator--" + uuid(n)
	refs := ""
	if marking != "" {
		refs = fmt.Sprintf(`,"object_marking_refs":[%q]`, marking)
	}
	raw := fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"name":"crash %d v%d","pattern":"[ipv4-addr:value = '10.%d.%d.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"%s}`,
		id, version(0), version(v), n, v, (n>>16)&255, (n>>8)&255, n&255, refs)
	return sent{id: id, version: version(v), raw: json.RawMessage(raw), valid: true}
}

// tool is a valid STIX object outside every agreement's scope here.
func tool(n int64) sent {
	id := "tool--" + uuid(n)
	raw := fmt.Sprintf(`{"type":"tool","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"name":"crash tool %d"}`, id, version(0), version(0), n)
	return sent{id: id, version: version(0), raw: json.RawMessage(raw), valid: true}
}

// invalid returns an object the server must refuse, in one of a few ways.
func invalid(n int64, how int) sent {
	id := "indicator--" + uuid(n)
	var raw string
	switch how % 3 {
	case 0: // a pattern that does not parse
		raw = fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"pattern":"[ipv4-addr:value = ","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`, id, version(0), version(0))
	case 1: // no spec_version
		raw = fmt.Sprintf(`{"type":"indicator","id":%q,"created":%q,"modified":%q,"pattern":"[ipv4-addr:value = '10.0.0.1']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`, id, version(0), version(0))
	default: // modified before created
		raw = fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":%q,"modified":"2025-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '10.0.0.1']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`, id, version(0))
	}
	return sent{id: id, version: version(0), raw: json.RawMessage(raw)}
}

// sameJSON reports whether two JSON documents have the same meaning.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// objectHead reads an object's id and version (modified, else created).
func objectHead(raw []byte) (id, version string, err error) {
	var h struct {
		ID       string `json:"id"`
		Created  string `json:"created"`
		Modified string `json:"modified"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return "", "", err
	}
	if h.Modified == "" {
		h.Modified = h.Created
	}
	return h.ID, h.Modified, nil
}
