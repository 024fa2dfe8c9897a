package app

import (
	"slices"
	"strings"
)

// servedDomains returns the domains presenced serves, which bound the
// domain label of metrics and counts (presence.Options.Domains): the parent
// domain of the component's JID (presence.example.org serves example.org, presence.localhost localhost),
// the -reconcile-domains and the -domains, each once, in that order. It
// never returns an empty list for a valid JID, so the tracker never learns
// domains from what clients send.
func servedDomains(o Config) []string {
	var out []string
	if _, parent, ok := strings.Cut(o.JID, "."); ok && parent != "" {
		out = append(out, parent)
	} else if o.JID != "" {
		out = append(out, o.JID)
	}
	for _, d := range slices.Concat(o.ReconcileDomains, o.Domains) {
		if d = strings.ToLower(strings.TrimSpace(d)); d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}
