package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descDBBytes   = prometheus.NewDesc("parley_db_bytes", "Size of the embedded database file.", nil, nil)
	descWALBytes  = prometheus.NewDesc("parley_db_wal_bytes", "Size of the embedded database's write-ahead log; the server truncates it above 16 MiB.", nil, nil)
	descFreeBytes = prometheus.NewDesc("parley_db_free_bytes", "Free space on the filesystem holding the embedded database, for the server's user.", nil, nil)
)

// storageCollector measures the database's files on each scrape.
type storageCollector func(context.Context) (Storage, error)

func (c storageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDBBytes
	ch <- descWALBytes
	ch <- descFreeBytes
}

func (c storageCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descFreeBytes, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(descDBBytes, prometheus.GaugeValue, float64(s.DatabaseBytes))
	ch <- prometheus.MustNewConstMetric(descWALBytes, prometheus.GaugeValue, float64(s.WALBytes))
	ch <- prometheus.MustNewConstMetric(descFreeBytes, prometheus.GaugeValue, float64(s.FreeBytes))
}
