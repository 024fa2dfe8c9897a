package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Every setting of presenced is one entry of settings: a flag, an
// environment variable and a key of the configuration file, with one
// default and one help text. docs/configuration.md is generated from the
// same table (TestConfigurationReference), so the reference cannot drift.
//
// Precedence, highest first: the command line, the environment, the file
// (-config), the default. The alternative of a file only (as MongooseIM
// does) suits packaging but not containers, where environment variables
// are the norm; flags stay for quick runs and tests.

// kind is how a setting's text is read.
type kind int

const (
	kString   kind = iota
	kList          // comma-separated, or a TOML array
	kDuration      // Go duration: 300ms, 5s, 2h45m
	kInt
	kFloat
)

type setting struct {
	key, def, help string
	kind           kind
	dst            any // *string, *[]string, *time.Duration, *int, *float64
	// positive: a duration or number must be > 0 (else >= 0).
	positive bool
	// zeroOff: 0 on the command line turns the feature off, which
	// Config, whose zero values mean the defaults, says with -1.
	zeroOff bool
	// check, if set, vets a string setting.
	check func(string) error
	group string // heading in the reference
}

func (s setting) env() string {
	return "PRESENCED_" + strings.ToUpper(strings.ReplaceAll(s.key, "-", "_"))
}

// settings lists every setting, writing into o (and level).
func settings(o *Config, level *string) []setting {
	return []setting{
		{key: "jid", help: "component JID, e.g. presence.example.org; required", dst: &o.JID, group: "XMPP server"},
		{key: "secret", help: "the component listener's shared secret; required", dst: &o.Secret, group: "XMPP server"},
		{key: "server", def: "127.0.0.1:8888", help: "the XMPP server's component listener, host:port", dst: &o.Server, group: "XMPP server"},
		{key: "admins", kind: kList, help: "bare JIDs or domains that may run the administration commands (XEP-0050) from an XMPP client", dst: &o.Admins, group: "XMPP server"},
		{key: "probe-wait", def: "5s", kind: kDuration, positive: true, help: "after probes (on a reconnect, in the sweep), how long to wait for answers", dst: &o.ProbeWait, group: "XMPP server"},
		{key: "link-grace", def: "30s", kind: kDuration, positive: true, help: "how long the server link may stay down before everyone it reported goes offline", dst: &o.LinkGrace, group: "XMPP server"},
		{key: "ping-interval", def: "5m", kind: kDuration, positive: true, help: "how long a resource may stay silent before it is pinged", dst: &o.PingInterval, group: "XMPP server"},
		{key: "ping-timeout", def: "30s", kind: kDuration, positive: true, help: "how long a ping may go unanswered before the resource goes offline", dst: &o.PingTimeout, group: "XMPP server"},
		{key: "sweep-interval", def: "15m", kind: kDuration, positive: true, help: "how often every online user is probed", dst: &o.SweepInterval, group: "XMPP server"},
		{key: "keepalive", def: "60s", kind: kDuration, positive: true, help: "how often the component pings itself through the server to check the link", dst: &o.KeepAlive, group: "XMPP server"},

		{key: "http", def: "127.0.0.1:8080", help: "listen address of the REST and WebSocket API and the dashboard", dst: &o.HTTP, group: "HTTP API"},
		{key: "jwt-keys", kind: kList, help: "key files for JWT authentication: PEM public keys (RS256, ES256, EdDSA) or hs256:<secret file>; none and no jwks means NO authentication", dst: &o.JWTKeys, group: "HTTP API"},
		{key: "jwks", help: "a JSON Web Key Set file for JWT authentication", dst: &o.JWKS, group: "HTTP API"},
		{key: "jwt-issuer", help: "required iss claim, when set", dst: &o.JWTIssuer, group: "HTTP API"},
		{key: "jwt-audience", help: "required aud claim, when set", dst: &o.JWTAudience, group: "HTTP API"},
		{key: "allowed-origins", kind: kList, help: "Origins allowed to open the WebSocket from a browser, or *; none: same origin only", dst: &o.AllowedOrigins, group: "HTTP API"},
		{key: "rate", def: "20", kind: kFloat, positive: true, help: "requests, WebSocket connects and client messages per second per token (or per IP without one); bursts of twice that", dst: &o.RatePerSecond, group: "HTTP API"},
		{key: "stream-queue", def: "2048", kind: kInt, positive: true, help: "changes waiting for one WebSocket client at most; a client whose queue fills is closed with 4008", dst: &o.StreamQueue, group: "HTTP API"},
		{key: "stream-flush-interval", def: "25ms", kind: kDuration, help: "the least time between two flushes of changes to the WebSocket clients (what comes meanwhile goes as one batch), stretched up to 4 times under a heavy fan-out; 0: no pause", dst: &o.StreamFlushInterval, zeroOff: true, group: "HTTP API"},
		{key: "stream-writers", def: "0", kind: kInt, help: "goroutines writing to WebSocket clients; 0: half the CPUs", dst: &o.StreamWriters, group: "HTTP API"},

		{key: "store", def: "memory", help: "where presence is mirrored: memory, or a PostgreSQL URL postgres://...", dst: &o.Store, group: "Store"},
		{key: "retention", def: "0", kind: kDuration, help: "with PostgreSQL: how long history and ended sessions are kept (e.g. 2160h); 0 keeps them", dst: &o.Retention, group: "Store"},

		{key: "domains", kind: kList, help: "the XMPP domains presenced serves, for the domain label of metrics and counts (others count as other); the -jid's parent domain and -reconcile-domains are served too", dst: &o.Domains, group: "Limits"},
		{key: "max-users", def: "1000000", kind: kInt, help: "users tracked at most, online or remembered offline; offline ones are forgotten first; 0: no bound", dst: &o.MaxUsers, group: "Limits"},
		{key: "max-resources", def: "32", kind: kInt, help: "online resources of one user at most; 0: no bound", dst: &o.MaxResources, group: "Limits"},
		{key: "max-stanza", def: "65536", kind: kInt, positive: true, help: "bytes of one presence stanza at most (text of names, attributes and content)", dst: &o.MaxStanza, group: "Limits"},
		{key: "user-rate", def: "10", kind: kInt, positive: true, help: "presence changes of one user applied per second; more are held and the newest applied at the end of the second", dst: &o.UserRate, group: "Limits"},

		{key: "mongooseim-graphql", help: "MongooseIM's admin GraphQL endpoint, e.g. http://mongooseim:5551/api/graphql; set, it turns on the periodic reconciliation with its session list", dst: &o.MongooseIM.Endpoint, group: "MongooseIM"},
		{key: "mongooseim-host", help: "Host header for the GraphQL endpoint, when its listener's host option does not match the URL (MongooseIM's template: localhost)", dst: &o.MongooseIM.Host, group: "MongooseIM"},
		{key: "mongooseim-user", help: "the GraphQL admin handler's username (HTTP Basic)", dst: &o.MongooseIM.User, group: "MongooseIM"},
		{key: "mongooseim-password", help: "the GraphQL admin handler's password", dst: &o.MongooseIM.Password, group: "MongooseIM"},
		{key: "mongooseim-rest", help: "MongooseIM's REST admin API (a mongoose_admin_api handler), its path included, e.g. http://mongooseim:5551/api; `presenced provision` needs it, with mongooseim-rest-user, mongooseim-rest-password and mongooseim-database, to put presenced on users' rosters; the service does not use it", dst: &o.MongooseIMREST.URL, group: "MongooseIM"},
		{key: "mongooseim-rest-user", help: "the REST admin handler's username (HTTP Basic); `presenced provision` needs it", dst: &o.MongooseIMREST.User, group: "MongooseIM"},
		{key: "mongooseim-rest-password", help: "the REST admin handler's password; `presenced provision` needs it", dst: &o.MongooseIMREST.Password, group: "MongooseIM"},
		{key: "mongooseim-database", help: "MongooseIM's RDBMS, the PostgreSQL that holds its rosters (rosterusers), e.g. postgres://mongooseim:...@db/mongooseim; `presenced provision` needs it to write the roster items the REST API then approves; the service does not use it", dst: &o.MongooseIMDatabase, group: "MongooseIM"},
		{key: "ejabberd-api", help: "ejabberd's HTTP API (mod_http_api), e.g. http://127.0.0.1:5281/api; set, it turns on reconciliation with its session list (connected_users_info): at start, after every reconnect and every reconcile-interval, users listed and not known are probed, resources known and not listed go offline", dst: &o.Ejabberd.URL, group: "ejabberd"},
		{key: "ejabberd-api-user", help: "an ejabberd account allowed connected_users_info by api_permissions, e.g. presenced@example.org (HTTP Basic); empty: no credentials (a rule by source address)", dst: &o.Ejabberd.User, group: "ejabberd"},
		{key: "ejabberd-api-password", help: "that account's password", dst: &o.Ejabberd.Password, group: "ejabberd"},

		{key: "reconcile-interval", def: "5m", kind: kDuration, positive: true, help: "with mongooseim-graphql or ejabberd-api: how often the server's session list corrects presenced's state", dst: &o.ReconcileInterval, group: "Reconciliation"},
		{key: "reconcile-listed", def: "probe", help: "with mongooseim-graphql or ejabberd-api: what a session the server lists and presenced does not know does: probe (its user is probed, and only the user's answer brings it online, so users who never let presenced see their presence stay out) or online (online from the list alone, without show or status)", dst: &o.ReconcileListed, group: "Reconciliation", check: func(v string) error {
			if v != "probe" && v != "online" {
				return fmt.Errorf("%q is neither probe nor online", v)
			}
			return nil
		}},
		{key: "reconcile-domains", kind: kList, help: "with mongooseim-graphql or ejabberd-api: the XMPP domains to reconcile, each on its own; none: every domain the server hosts (right only when presenced follows this one server)", dst: &o.ReconcileDomains, group: "Reconciliation"},

		{key: "metrics", help: "listen address of the Prometheus endpoint /metrics, e.g. 127.0.0.1:9464; empty: none", dst: &o.Metrics, group: "Operations"},
		{key: "log-level", def: "info", help: "debug, info, warn or error", dst: level, group: "Operations", check: func(v string) error {
			var lv slog.Level
			if lv.UnmarshalText([]byte(v)) != nil {
				return fmt.Errorf("%q is not one of debug, info, warn, error", v)
			}
			return nil
		}},
	}
}

// ParseSettings reads presenced's settings from args (the command line's
// flags), getenv (the environment) and the TOML file named by -config or
// PRESENCED_CONFIG, over the defaults, into a Config that Validate
// accepts, with a Logger writing text to stderr at -log-level. Usage and
// flag errors go to stderr; -help returns flag.ErrHelp. Other errors name
// the flag, variable or file key the bad value came from. cmd/presenced
// calls it, and so do tests that start a presenced in-process the way an
// operator configures one.
func ParseSettings(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	o, rest, err := ParseArgs("presenced", args, getenv, stderr)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("unexpected arguments: %s", strings.Join(rest, " "))
	}
	return o, err
}

// ParseArgs is ParseSettings for a command named name that takes
// arguments after its flags (presenced provision USER...); it returns them.
func ParseArgs(name string, args []string, getenv func(string) string, stderr io.Writer) (Config, []string, error) {
	var o Config
	var level string
	all := settings(&o, &level)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	raw := make([]*string, len(all))
	for i, s := range all {
		help := s.help
		if s.def != "" {
			help += " (default " + s.def + ")"
		}
		raw[i] = fs.String(s.key, "", help+" ["+s.env()+"]")
	}
	config := fs.String("config", "", "a TOML configuration file whose keys are these flags' names; flags and environment variables override it [PRESENCED_CONFIG]")
	if err := fs.Parse(args); err != nil {
		return o, nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	path := *config
	if !set["config"] {
		path = getenv("PRESENCED_CONFIG")
	}
	var file map[string]string
	if path != "" {
		var err error
		if file, err = readConfig(path, all); err != nil {
			return o, nil, err
		}
	}
	for i, s := range all {
		v, from := s.def, "the default of "+s.key
		fv, inFile := file[s.key]
		switch {
		case set[s.key]:
			v, from = *raw[i], "-"+s.key
		case getenv(s.env()) != "":
			v, from = getenv(s.env()), s.env()
		case inFile:
			v, from = fv, fmt.Sprintf("%s: key %q", path, s.key)
		}
		if err := s.set(v); err != nil {
			return o, nil, fmt.Errorf("%s: %v", from, err)
		}
	}
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // vetted above
	o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	return o, fs.Args(), o.Validate()
}

// set parses v into the setting's destination.
func (s setting) set(v string) error {
	switch dst := s.dst.(type) {
	case *string:
		if s.check != nil {
			if err := s.check(v); err != nil {
				return err
			}
		}
		*dst = v
	case *[]string:
		*dst = splitList(v)
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || (s.positive && d == 0) {
			return fmt.Errorf("not a %sduration (like 300ms, 5s, 2h45m): %q", positiveWord(s.positive), v)
		}
		if d == 0 && s.zeroOff {
			d = -1
		}
		*dst = d
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || (s.positive && n == 0) {
			return fmt.Errorf("not a %swhole number: %q", positiveWord(s.positive), v)
		}
		*dst = n
	case *float64:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || (s.positive && f == 0) {
			return fmt.Errorf("not a %snumber: %q", positiveWord(s.positive), v)
		}
		*dst = f
	default:
		return errors.New("unknown setting type") // a programming error
	}
	return nil
}

func positiveWord(positive bool) string {
	if positive {
		return "positive "
	}
	return "non-negative "
}

// readConfig reads a TOML file into each setting's text form. Unknown keys,
// tables and values of the wrong type are errors naming the key.
func readConfig(path string, all []setting) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-config: %w", err)
	}
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("%s: line %d: %s", path, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	known := map[string]setting{}
	for _, s := range all {
		known[s.key] = s
	}
	out := map[string]string{}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first error is the same every time
	for _, k := range keys {
		s, ok := known[k]
		if !ok {
			return nil, fmt.Errorf("%s: unknown key %q (see docs/configuration.md)", path, k)
		}
		text, err := tomlText(doc[k], s.kind)
		if err != nil {
			return nil, fmt.Errorf("%s: key %q: %v", path, k, err)
		}
		out[k] = text
	}
	return out, nil
}

// tomlText turns a TOML value into the text a flag would carry.
func tomlText(v any, k kind) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case int64:
		if k == kString || k == kList {
			return "", fmt.Errorf("want a string, got the number %d", v)
		}
		if k == kDuration {
			return "", fmt.Errorf("want a duration as a string (like \"5s\"), got %d", v)
		}
		return strconv.FormatInt(v, 10), nil
	case float64:
		if k != kFloat {
			return "", fmt.Errorf("want %s, got %v", kindWord(k), v)
		}
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case []any:
		if k != kList {
			return "", fmt.Errorf("want %s, got a list", kindWord(k))
		}
		items := make([]string, len(v))
		for i, it := range v {
			s, ok := it.(string)
			if !ok || strings.Contains(s, ",") {
				return "", fmt.Errorf("item %d: want a string without commas, got %v", i+1, it)
			}
			items[i] = s
		}
		return strings.Join(items, ","), nil
	default:
		return "", fmt.Errorf("want %s, got %T", kindWord(k), v)
	}
}

func kindWord(k kind) string {
	switch k {
	case kList:
		return "a list of strings"
	case kDuration:
		return "a duration string"
	case kInt:
		return "a whole number"
	case kFloat:
		return "a number"
	}
	return "a string"
}

// reference renders the settings as the Markdown of
// docs/configuration.md.
func reference() string {
	var o Config
	var level string
	var b strings.Builder
	b.WriteString(`# Configuration reference

<!-- Generated from internal/app/settings.go by
     go test ./internal/app -run TestConfigurationReference -update
     Do not edit by hand. -->

Every setting is a flag, an environment variable and a key of the TOML
file named by ` + "`-config`" + ` (or ` + "`PRESENCED_CONFIG`" + `). The command line
wins over the environment, which wins over the file, which wins over the
default. A bad value stops presenced at start with an error that names
the flag, variable or file key it came from; so does an unknown key in the
file. Durations are written like ` + "`300ms`, `5s`, `2h45m`" + `; lists are
comma-separated in flags and variables, TOML arrays in the file.

` + "`presenced provision USER...`" + ` (put presenced on users' rosters on
MongooseIM, through its database and REST admin API: the ` + "`mongooseim-rest*`" + `
and ` + "`mongooseim-database`" + ` settings; ` + "`-`" + ` reads users from stdin) takes the
same settings; ` + "`presenced migrate`" + ` (apply the PostgreSQL schema) only ` + "`-store`" + `.

` + "```toml" + `
# /etc/presenced.toml
jid = "presence.example.org"
server = "xmpp.internal:8888"
store = "postgres://presenced@db/presenced"
admins = ["ops@example.org"]
ping-interval = "2m"
max-resources = 16
` + "```" + `

`)
	group := ""
	for _, s := range settings(&o, &level) {
		if s.group != group {
			group = s.group
			fmt.Fprintf(&b, "\n## %s\n\n| key / flag | environment | default | meaning |\n|---|---|---|---|\n", group)
		}
		def := "—"
		if s.def != "" {
			def = "`" + s.def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s (%s) |\n", s.key, s.env(), def, s.help, kindWord(s.kind))
	}
	return b.String()
}

// splitList splits a comma-separated setting, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
