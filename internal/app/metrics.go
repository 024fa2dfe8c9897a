package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/presenced/presenced/presence"
)

// newRegistry returns the registry every subsystem registers its metrics
// in (never the global one), with the Go runtime, the process, build info
// and the tracker's state.
func newRegistry(t *presence.Tracker) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	version, goVersion := "devel", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "presence_build_info",
		Help:        "Always 1; the labels say which presenced this is.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": goVersion},
	})
	build.Set(1)
	reg.MustRegister(build, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		trackerCollector{t})
	return reg
}

// trackerCollector reports the tracker's state at each scrape from the
// counts the tracker keeps as changes happen: O(served domains), whatever
// the users. The domain label takes the tracker's served domains
// (presence.Options.Domains) and "other" only, so what clients send
// (a web presence in any domain) adds no series.
type trackerCollector struct{ t *presence.Tracker }

var (
	usersDesc = prometheus.NewDesc("presence_tracker_users",
		"Known users by aggregate show (offline included) and domain: a served domain, or other.", []string{"show", "domain"}, nil)
	resourcesDesc = prometheus.NewDesc("presence_tracker_resources",
		"Online resources.", nil, nil)
	eventsDesc = prometheus.NewDesc("presence_tracker_events_total",
		"Changes published on the feed since presenced started.", nil, nil)
	refusedDesc = prometheus.NewDesc("presence_tracker_refused_total",
		"Updates refused by -max-users or -max-resources.", nil, nil)
)

func (c trackerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- usersDesc
	ch <- resourcesDesc
	ch <- eventsDesc
	ch <- refusedDesc
}

func (c trackerCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.t.Counts()
	states := presence.StateNames()
	resources := 0
	for _, d := range counts.Domains {
		// Every state of every label, zeros included: a series does not
		// come and go with the users.
		for s, n := range d.Users {
			ch <- prometheus.MustNewConstMetric(usersDesc, prometheus.GaugeValue, float64(n), states[s], d.Domain)
		}
		resources += d.Resources
	}
	ch <- prometheus.MustNewConstMetric(resourcesDesc, prometheus.GaugeValue, float64(resources))
	ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.CounterValue, float64(counts.Seq))
	ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(c.t.Refused()))
}

// metricsService serves /metrics on its own listener, under the
// supervisor like the other subsystems.
type metricsService struct {
	reg *prometheus.Registry
	ln  net.Listener
}

func (s *metricsService) Serve(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, net.ErrClosed) {
			return ctx.Err()
		}
		return fmt.Errorf("presenced: metrics: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return ctx.Err()
}

func (s *metricsService) String() string { return "metrics" }
