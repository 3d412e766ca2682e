// Package metrics exposes parley's Prometheus metrics: HTTP requests and
// latencies by route pattern, and what the ledger says happened — objects
// ingested, duplicated, refused and released, what allowances withhold,
// handovers by state, the ledger's size and how stale its latest
// checkpoint is.
//
// Routes are labelled with the ServeMux pattern that matched, never the raw
// path, so label cardinality stays bounded whatever clients send.
//
// Domain counts are derived by tailing the ledger, the one record every
// instance shares, so they need no hooks in the domain packages and every
// instance on one database reports the same cluster-wide values (aggregate
// them with max, not sum). This package must never change state and never
// label a metric with a party, token, object or agreement id.
package metrics

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the registry and the HTTP instruments.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
}

// New returns metrics on a fresh registry with the Go and process
// collectors, and the ledger collector when o.Ledger is set.
func New(o Options) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_http_requests_total",
			Help: "HTTP requests served, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "parley_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by method and route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method", "route"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_http_requests_in_flight",
			Help: "HTTP requests being served now.",
		}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.inflight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if o.Ledger != nil {
		m.reg.MustRegister(newLedgerCollector(o))
	}
	if o.Storage != nil {
		m.reg.MustRegister(storageCollector(o.Storage))
	}
	if o.Commits != nil {
		m.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_db_commits_total",
				Help: "Write transactions the embedded database began; concurrent writes share one (group commit)."},
				func() float64 { return float64(o.Commits().Transactions) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_db_commit_members_total",
				Help: "Writes run in those transactions; divided by parley_db_commits_total, the average group."},
				func() float64 { return float64(o.Commits().Members) }))
	}
	return m
}

// Registry returns the registry, for tests and further collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Wrap instruments h, which must be (or end in) a ServeMux: the route label
// is the pattern the mux matched, read after it has routed the request.
func (m *Metrics) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.inflight.Inc()
		rec := &recorder{ResponseWriter: w}
		defer func() {
			m.inflight.Dec()
			method, route := methodLabel(r.Method), routeLabel(r.Pattern)
			code := rec.status
			if code == 0 {
				code = http.StatusOK
			}
			m.requests.WithLabelValues(method, route, codeLabel(code)).Inc()
			m.duration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		}()
		h.ServeHTTP(rec, r)
	})
}

// routeLabel turns "GET /ui/agreements/{id}" into "/ui/agreements/{id}";
// requests no pattern matched share one label.
func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		pattern = strings.TrimLeft(pattern[i+1:], " \t")
	}
	return pattern
}

// methodLabel keeps the method label to a known set.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

func codeLabel(c int) string {
	if c < 100 || c > 999 {
		return "other"
	}
	return string([]byte{byte('0' + c/100), byte('0' + c/10%10), byte('0' + c%10)})
}

// recorder remembers the status code; Unwrap keeps http.ResponseController
// (flushing, deadlines) working through it.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code // informational 1xx headers are not the final status
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		if r.status == 0 {
			r.status = http.StatusOK
		}
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
