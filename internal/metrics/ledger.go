package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-cti/parley/internal/ledger"
)

// Options configure New.
type Options struct {
	// Ledger is tailed on each scrape for the domain metrics; nil leaves
	// them out.
	Ledger ledger.Reader
	Logger *slog.Logger
	// Now is the clock checkpoint age is measured by (tests); nil is time.Now.
	Now func() time.Time
	// MaxEntriesPerScrape bounds how much of the ledger one scrape reads, so
	// the first scrape of a large ledger does not time out; later scrapes
	// catch up. Default 200,000.
	MaxEntriesPerScrape int64
	// Storage, when set, measures an embedded database's files on each
	// scrape (parley_db_*_bytes gauges).
	Storage func(context.Context) (Storage, error)
	// Commits, when set, counts the database's write transactions and the
	// writes grouped into them (parley_db_commits_total,
	// parley_db_commit_members_total).
	Commits func() Commits
}

// Commits is how many write transactions a database began and how many
// writes (Updates) ran in them: their ratio is the group commit's batch.
type Commits struct {
	Transactions, Members int64
}

// Storage is what an embedded database occupies and what is left.
type Storage struct {
	DatabaseBytes, WALBytes, FreeBytes int64
}

const readChunk = 1024

var (
	descEntries   = prometheus.NewDesc("parley_ledger_entries_total", "Ledger entries by kind.", []string{"kind"}, nil)
	descIngested  = prometheus.NewDesc("parley_objects_ingested_total", "STIX objects stored from contributions (new versions only).", nil, nil)
	descDuplicate = prometheus.NewDesc("parley_objects_duplicate_total", "Contributed objects that were already stored.", nil, nil)
	descRefused   = prometheus.NewDesc("parley_objects_refused_total", "Contributed objects refused as invalid or out of an agreement's scope.", nil, nil)
	descReleased  = prometheus.NewDesc("parley_objects_released_total", "Objects give-to-get released to the other party of an agreement.", nil, nil)
	descReleases  = prometheus.NewDesc("parley_allowance_releases_total", "Allowance increases that released objects (feed.released entries).", nil, nil)
	descWithheld  = prometheus.NewDesc("parley_allowance_withheld_objects", "Objects contributed under agreements that allowances do not (yet) let the other party read.", nil, nil)
	descHandovers = prometheus.NewDesc("parley_handovers", "Handovers by their latest recorded state.", []string{"state"}, nil)
	descSize      = prometheus.NewDesc("parley_ledger_size", "Entries in the ledger.", nil, nil)
	descCPSize    = prometheus.NewDesc("parley_ledger_checkpoint_size", "Size of the latest signed checkpoint.", nil, nil)
	descCPAge     = prometheus.NewDesc("parley_ledger_checkpoint_age_seconds", "How long the oldest ledger entry not covered by the latest signed checkpoint has waited; 0 when the checkpoint covers the whole ledger.", nil, nil)
	descErrors    = prometheus.NewDesc("parley_metrics_ledger_errors_total", "Scrapes that failed to read the ledger (the last values are reported).", nil, nil)
)

// handoverStates are the states store.Handover takes; handoverState says
// which one an entry moves a case to.
var handoverStates = []string{"proposed", "accepted", "declined", "released", "expired"}

// handoverState returns the state a handover.* entry leaves its case in,
// or "" when the entry does not change it (a deposit, a dispute).
func handoverState(e entryHead) string {
	switch e.Kind {
	case ledger.KindHandoverProposed:
		if e.Attrs["step"] == "accepted" {
			return "accepted" // acceptance is recorded as the proposal made bilateral
		}
		return "proposed"
	case ledger.KindHandoverWithdrawn:
		if e.Attrs["step"] == "declined" {
			return "declined"
		}
	case ledger.KindHandoverReleased:
		return "released"
	case ledger.KindHandoverExpired:
		return "expired"
	}
	return ""
}

// ledgerCollector tails the ledger: each scrape reads only the entries
// appended since the last one.
type ledgerCollector struct {
	o   Options
	log *slog.Logger

	mu        sync.Mutex
	next      int64 // first entry not yet read
	kinds     map[ledger.Kind]float64
	ingested  float64
	duplicate float64
	refused   float64
	released  float64
	releases  float64
	// Give-to-get accounting per agreement, to compute what is withheld.
	credited    map[string]map[string]int64 // agreement → contributor → credited objects
	releasedTo  map[string]map[string]int64 // agreement → recipient → released up to
	counterpart map[string]map[string]string
	handovers   map[string]string // handover subject → state
	errors      float64
	size        int64
	cpSize      int64
	cpAge       float64
}

func newLedgerCollector(o Options) *ledgerCollector {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxEntriesPerScrape <= 0 {
		o.MaxEntriesPerScrape = 200_000
	}
	c := &ledgerCollector{o: o, log: o.Logger, kinds: map[ledger.Kind]float64{},
		credited: map[string]map[string]int64{}, releasedTo: map[string]map[string]int64{},
		counterpart: map[string]map[string]string{}, handovers: map[string]string{}}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c
}

func (c *ledgerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEntries, descIngested, descDuplicate, descRefused, descReleased,
		descReleases, descWithheld, descHandovers, descSize, descCPSize, descCPAge, descErrors} {
		ch <- d
	}
}

func (c *ledgerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refresh(ctx); err != nil {
		c.errors++
		c.log.WarnContext(ctx, "metrics: reading the ledger", slog.Any("err", err))
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, k := range ledger.Kinds() {
		counter(descEntries, c.kinds[k], string(k))
	}
	counter(descIngested, c.ingested)
	counter(descDuplicate, c.duplicate)
	counter(descRefused, c.refused)
	counter(descReleased, c.released)
	counter(descReleases, c.releases)
	counter(descErrors, c.errors)
	var withheld int64
	for ag, by := range c.credited {
		for contributor, n := range by {
			for recipient, other := range c.counterpart[ag] {
				if other == contributor {
					withheld += max(0, n-c.releasedTo[ag][recipient])
				}
			}
		}
	}
	gauge(descWithheld, float64(withheld))
	states := map[string]float64{}
	for _, s := range handoverStates {
		states[s] = 0 // every state is reported, zero included
	}
	for _, s := range c.handovers {
		states[s]++
	}
	for s, n := range states {
		gauge(descHandovers, n, s)
	}
	gauge(descSize, float64(c.size))
	gauge(descCPSize, float64(c.cpSize))
	gauge(descCPAge, c.cpAge)
}

// entryHead is the part of an entry the metrics read; decoding it skips
// the canonical-form check, which verifiers do.
type entryHead struct {
	Kind      ledger.Kind       `json:"kind"`
	Actor     string            `json:"actor"`
	Agreement string            `json:"agreement"`
	Subject   string            `json:"subject"`
	Parties   []string          `json:"parties"`
	Attrs     map[string]string `json:"attrs"`
	Time      time.Time         `json:"time"`
}

func (c *ledgerCollector) refresh(ctx context.Context) error {
	l := c.o.Ledger
	size, err := l.Size(ctx)
	if err != nil {
		return err
	}
	c.size = size
	end := min(size, c.next+c.o.MaxEntriesPerScrape)
	for c.next < end {
		to := min(end, c.next+readChunk)
		raws, err := l.ReadEntries(ctx, c.next, to)
		if err != nil {
			return err
		}
		for _, raw := range raws {
			var e entryHead
			if err := json.Unmarshal(raw, &e); err != nil {
				return err
			}
			c.count(e)
			c.next++
		}
	}
	cpSize, _, err := l.LatestCheckpoint(ctx)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		cpSize = 0
	case err != nil:
		return err
	}
	c.cpSize, c.cpAge = cpSize, 0
	if cpSize < size {
		raws, err := l.ReadEntries(ctx, cpSize, cpSize+1)
		if err != nil {
			return err
		}
		var e entryHead
		if err := json.Unmarshal(raws[0], &e); err != nil {
			return err
		}
		c.cpAge = max(0, c.o.Now().Sub(e.Time).Seconds())
	}
	return nil
}

func (c *ledgerCollector) count(e entryHead) {
	c.kinds[e.Kind]++
	num := func(k string) int64 {
		n, _ := strconv.ParseInt(e.Attrs[k], 10, 64)
		return n
	}
	switch {
	case e.Kind == ledger.KindFeedBatch:
		c.ingested += float64(num("added"))
		c.duplicate += float64(num("duplicates"))
		c.refused += float64(num("refused"))
		if e.Agreement != "" {
			if c.credited[e.Agreement] == nil {
				c.credited[e.Agreement] = map[string]int64{}
			}
			c.credited[e.Agreement][e.Actor] += num("credited")
		}
	case e.Kind == ledger.KindFeedReleased:
		c.releases++
		c.released += float64(num("to") - num("from") + 1)
		recipient, contributor := e.Attrs["recipient"], e.Attrs["contributor"]
		if c.releasedTo[e.Agreement] == nil {
			c.releasedTo[e.Agreement] = map[string]int64{}
			c.counterpart[e.Agreement] = map[string]string{}
		}
		c.releasedTo[e.Agreement][recipient] = num("to")
		c.counterpart[e.Agreement][recipient] = contributor
	case e.Kind == ledger.KindAgreementProposed && len(e.Parties) == 2:
		// Know both sides from the start, so contributions nobody has been
		// released yet count as withheld.
		if c.counterpart[e.Agreement] == nil {
			c.counterpart[e.Agreement] = map[string]string{}
			c.releasedTo[e.Agreement] = map[string]int64{}
		}
		c.counterpart[e.Agreement][e.Parties[0]] = e.Parties[1]
		c.counterpart[e.Agreement][e.Parties[1]] = e.Parties[0]
	case strings.HasPrefix(string(e.Kind), "handover."):
		if s := handoverState(e); s != "" {
			c.handovers[e.Subject] = s
		}
	}
}
