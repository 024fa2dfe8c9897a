package component

import (
	"encoding/xml"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the component's Prometheus series; nil when no Registerer
// was configured (every method is then a no-op).
type metrics struct {
	stanzas   *prometheus.CounterVec
	connects  prometheus.Counter
	pings     *prometheus.CounterVec
	limits    *prometheus.CounterVec
	conflicts prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, c *Component) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		stanzas: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "presence_component_stanzas_total",
			Help: "Stanzas received from the XMPP server, by element (presence, iq, message) and type (available for presence without one).",
		}, []string{"stanza", "type"}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "presence_component_connects_total",
			Help: "Completed XEP-0114 handshakes: 1 plus the reconnects.",
		}),
		pings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "presence_component_pings_total",
			Help: "Pings to silent resources, by outcome (answered, error, timeout; disco: an error, then an answer to disco#info; rechecked: a resource offline for a missed ping answered again, as a resumed stream-management session does).",
		}, []string{"outcome"}),
	}
	m.conflicts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "presence_component_conflicts_total",
		Help: "Links the server ended with the stream error conflict: another connection with the component's JID replaced this one (a second presenced with the same JID?).",
	})
	m.limits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "presence_component_presence_limited_total",
		Help: "Presence stanzas a limit caught, by reason: too_big (over MaxStanza, dropped), held (over UserRate, applied at the end of the second if still the newest), refused (the tracker's MaxUsers or MaxResources).",
	}, []string{"reason"})
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "presence_component_presence_privileged",
		Help: "1 while the server grants the component the presence permission of XEP-0356 on the current link, else 0.",
	}, func() float64 {
		if c.PresencePrivilege() != "" {
			return 1
		}
		return 0
	}))
	reg.MustRegister(m.stanzas, m.connects, m.pings, m.limits, m.conflicts, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "presence_component_link_up",
		Help: "1 while the link to the XMPP server is up (handshake done), else 0.",
	}, func() float64 {
		if c.Connected() {
			return 1
		}
		return 0
	}))
	return m
}

// stanza counts one received stanza; the attributes are only looked at
// when metrics are on (this runs for every stanza).
func (m *metrics) stanza(start *xml.StartElement) {
	if m == nil {
		return
	}
	name, typ := start.Name.Local, attrValue(start.Attr, "type")
	if typ == "" {
		if name != "presence" {
			typ = "none"
		} else {
			typ = "available"
		}
	}
	switch name {
	case "presence", "iq", "message":
	default:
		name, typ = "other", "none"
	}
	switch typ {
	case "available", "unavailable", "subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe", "error",
		"get", "set", "result", "none", "chat", "normal", "groupchat", "headline":
	default:
		typ = "unknown" // bounded label values, whatever a peer sends
	}
	m.stanzas.WithLabelValues(name, typ).Inc()
}

// limited counts a presence a limit caught.
func (m *metrics) limited(reason string) {
	if m != nil {
		m.limits.WithLabelValues(reason).Inc()
	}
}

func (m *metrics) connected() {
	if m != nil {
		m.connects.Inc()
	}
}

func (m *metrics) conflict() {
	if m != nil {
		m.conflicts.Inc()
	}
}

func (m *metrics) ping(outcome string) {
	if m != nil {
		m.pings.WithLabelValues(outcome).Inc()
	}
}
