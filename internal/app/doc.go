// Package app is presenced's composition root: the one place that builds
// the tracking core, its store, the XMPP component, the session
// reconciler, the HTTP bridge, the timers and the metrics endpoint from
// one Config, and runs them.
//
// cmd/presenced only parses settings into a Config (ParseSettings: flags,
// environment, TOML file, defaults; settings.go is the one table of them,
// from which docs/configuration.md is generated) and calls Run; tests and
// tools start a whole presenced in-process with New, Start and Stop (as
// nats-server's RunServer does), from a Config or from the same settings
// an operator gives the binary, and read Addr for the port the system
// chose. Nothing else in the project wires the adapters to the core (the
// fan-out load tool builds a bare bridge on a tracker, to measure it), so
// the import arrows stay one way: presence knows no adapter, store knows
// presence, component and bridge are adapters around the core, and only
// this package knows them all.
//
// Design decisions:
//
//   - A supervisor (github.com/thejerf/suture/v4), like the original OTP
//     design's one_for_one tree: the component link, the reconciler, the
//     HTTP bridge, the timers, the store writer and the metrics endpoint
//     each run as a service that is logged and restarted alone, with
//     backoff, if it fails or panics. Stop stops them in order: first the
//     component (no new input), then the bridge (clients are told the
//     server goes away), then the store writer (it flushes what is already
//     published), the metrics last. The alternative, an errgroup that ends
//     everything at the first error, turns a transient failure of one
//     subsystem (a database restart) into an outage of all.
//   - Start binds the listeners and loads the store before it returns, so
//     that a bad address or an unreachable database fails at once with an
//     error naming the setting, and a caller can read Addr without a
//     callback. The services then run in the background until Stop.
//   - The bridge's Access is the verified token's *auth.Claims itself; no
//     adapter sits between authentication and the bridge.
//   - Zero values: every field of Config, like every config struct of the
//     project, means its documented default when zero (for a limit such as
//     MaxUsers, the package's default: no bound; the command line's
//     defaults, such as -max-users 1000000, are the settings table's), and
//     a pause or wait that can be turned off is turned off by a negative
//     value, so a setting passes from Config to a package's config
//     unchanged.
package app
