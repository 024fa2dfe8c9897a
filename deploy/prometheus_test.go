//go:build integration

package deploy

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

func promtool(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not on PATH (Debian: apt-get install prometheus; scripts/test installs it)")
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestPrometheusConfig(t *testing.T) {
	promtool(t, "check", "config", filepath.Join(root, "deploy/prometheus/prometheus.yml"))
	promtool(t, "check", "rules", filepath.Join(root, "deploy/prometheus/alerts.yml"))

	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "deploy/prometheus/prometheus.yml")), &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cfg.RuleFiles, "alerts.yml") {
		t.Errorf("prometheus.yml rule_files %v lacks alerts.yml", cfg.RuleFiles)
	}
	// The presenced job scrapes presenced's metrics listener.
	p := project(t)
	_, port := hostPort(t, env(t, service(t, p, "presenced"), "PRESENCED_METRICS"))
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = true
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, _ := hostPort(t, target)
				if _, err := p.GetService(host); err != nil {
					t.Errorf("job %s scrapes %s, not a service", sc.JobName, target)
				}
				if sc.JobName == "presenced" && target != "presenced:"+strconv.Itoa(port) {
					t.Errorf("job presenced scrapes %s, presenced's metrics are on port %d", target, port)
				}
			}
		}
	}
	if !jobs["presenced"] {
		t.Fatal("prometheus.yml has no job presenced")
	}
	// Prometheus reads the directory the config is in.
	mounted := false
	for _, v := range service(t, p, "prometheus").Volumes {
		abs, _ := filepath.Abs(filepath.Join(root, "deploy/prometheus"))
		mounted = mounted || (v.Source == abs && v.Target == "/etc/prometheus")
	}
	if !mounted {
		t.Error("prometheus does not mount deploy/prometheus at /etc/prometheus")
	}

	checkRules(t, jobs)
}

// goSources returns the text of the non-test Go files of the repository.
func goSources(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// anchor is GitHub's anchor of a Markdown heading.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

func anchors(t *testing.T, doc string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, line := range strings.Split(readFile(t, doc), "\n") {
		if h := strings.TrimLeft(line, "#"); len(h) < len(line) && strings.HasPrefix(h, " ") {
			out[anchor(h)] = true
		}
	}
	return out
}

// checkRules checks that each rule's series exist in presenced (or are
// Prometheus's up), that its label values are ones presenced uses, that
// its runbook section exists, and runs promtool's rule unit test on it.
func checkRules(t *testing.T, jobs map[string]bool) {
	var rf ruleFile
	if err := yaml.Unmarshal([]byte(readFile(t, "deploy/prometheus/alerts.yml")), &rf); err != nil {
		t.Fatal(err)
	}
	src := goSources(t)
	opsAnchors := anchors(t, "docs/operations.md")
	series := regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}`)
	matcher := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	names := regexp.MustCompile(`\bpresence_[a-z0-9_]+\b`)
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			for _, name := range names.FindAllString(r.Expr, -1) {
				base := name
				for _, suffix := range []string{"_count", "_sum", "_bucket"} {
					if b, ok := strings.CutSuffix(name, suffix); ok && strings.Contains(src, `"`+b+`"`) {
						base = b
					}
				}
				if !strings.Contains(src, `"`+base+`"`) {
					t.Errorf("alert %s uses %s, which presenced does not export", r.Alert, name)
				}
			}
			for _, sm := range series.FindAllStringSubmatch(r.Expr, -1) {
				if sm[1] != "up" && !strings.HasPrefix(sm[1], "presence_") {
					t.Errorf("alert %s uses the series %s, neither presenced's nor up", r.Alert, sm[1])
				}
				for _, mm := range matcher.FindAllStringSubmatch(sm[2], -1) {
					label, value := mm[1], mm[3]
					switch label {
					case "job":
						if !jobs[value] {
							t.Errorf("alert %s selects job=%q, not a job of prometheus.yml", r.Alert, value)
						}
					case "instance":
					case "code": // an HTTP status, formatted by strconv
						if _, err := strconv.Atoi(value); err != nil {
							t.Errorf("alert %s: code=%q", r.Alert, value)
						}
					default:
						for _, v := range strings.Split(value, "|") {
							if !strings.Contains(src, `"`+v+`"`) {
								t.Errorf("alert %s selects %s=%q, a value presenced never sets", r.Alert, label, v)
							}
						}
					}
				}
			}
			rb := r.Annotations["runbook"]
			doc, frag, _ := strings.Cut(rb, "#")
			if doc != "docs/operations.md" || !opsAnchors[frag] {
				t.Errorf("alert %s: runbook %q is not a section of docs/operations.md", r.Alert, rb)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: want severity, summary and description", r.Alert)
			}
		}
	}
	ruleUnitTests(t, rf, alerts)
}

// alertCase is one promtool rule unit test: the series, the time, and
// whether the alert fires then.
type alertCase struct {
	alert  string
	series map[string]string // series selector (without job/instance) → values
	at     string
	fires  bool
	labels map[string]string // extra labels of the alert (besides job, instance, severity)
}

var alertCases = []alertCase{
	{alert: "PresencedDown", series: map[string]string{"up": "1 0 0 0"}, at: "3m", fires: true},
	{alert: "PresencedDown", series: map[string]string{"up": "1 1 1 1"}, at: "3m"},
	{alert: "PresencedXMPPLinkDown", series: map[string]string{"presence_component_link_up": "1 0 0 0 0 0"}, at: "5m", fires: true},
	{alert: "PresencedXMPPLinkDown", series: map[string]string{"presence_component_link_up": "1 0 0 1 1 1"}, at: "5m"},
	{alert: "PresencedStoreWritesFailing", series: map[string]string{
		`presence_store_flush_duration_seconds_count{result="error"}`: "0+1x20",
		`presence_store_flush_duration_seconds_count{result="ok"}`:    "0x20"}, at: "10m", fires: true},
	{alert: "PresencedStoreWritesFailing", series: map[string]string{
		`presence_store_flush_duration_seconds_count{result="error"}`: "3x20",
		`presence_store_flush_duration_seconds_count{result="ok"}`:    "0+100x20"}, at: "10m"},
	{alert: "PresencedStoreBacklog", series: map[string]string{"presence_store_queue_events": "20000x10"}, at: "8m", fires: true},
	{alert: "PresencedStoreBacklog", series: map[string]string{"presence_store_queue_events": "9000x10"}, at: "8m"},
	{alert: "PresencedStoreDroppingHistory", series: map[string]string{"presence_store_dropped_rows_total": "0 0 5 5"}, at: "3m", fires: true},
	{alert: "PresencedStoreDroppingHistory", series: map[string]string{"presence_store_dropped_rows_total": "5x20"}, at: "15m"},
	{alert: "PresencedSlowStreamClients", series: map[string]string{
		`presence_bridge_stream_closed_total{reason="slow"}`: "0+5x30"}, at: "25m", fires: true},
	{alert: "PresencedSlowStreamClients", series: map[string]string{
		`presence_bridge_stream_closed_total{reason="slow"}`:        "0+0.5x30",
		`presence_bridge_stream_closed_total{reason="write_error"}`: "0+50x30"}, at: "25m"},
	{alert: "PresencedPresenceTooBig", series: map[string]string{
		`presence_component_presence_limited_total{reason="too_big"}`: "0 1 1"}, at: "2m", fires: true},
	{alert: "PresencedPresenceTooBig", series: map[string]string{
		`presence_component_presence_limited_total{reason="held"}`: "0+100x5"}, at: "4m"},
	{alert: "PresencedPresenceHeld", series: map[string]string{
		`presence_component_presence_limited_total{reason="held"}`: "0+1200x30"}, at: "25m", fires: true},
	{alert: "PresencedPresenceHeld", series: map[string]string{
		`presence_component_presence_limited_total{reason="held"}`: "0+60x30"}, at: "25m"},
	{alert: "PresencedTrackerRefused", series: map[string]string{"presence_tracker_refused_total": "0 0 3"}, at: "2m", fires: true},
	{alert: "PresencedTrackerRefused", series: map[string]string{"presence_tracker_refused_total": "3x20"}, at: "15m"},
	{alert: "PresencedNoEvents", series: map[string]string{
		"presence_tracker_events_total": "5x90", "presence_component_link_up": "1x90"}, at: "70m", fires: true},
	{alert: "PresencedNoEvents", series: map[string]string{
		"presence_tracker_events_total": "0+1x90", "presence_component_link_up": "1x90"}, at: "70m"},
	{alert: "PresencedNoEvents", series: map[string]string{
		"presence_tracker_events_total": "5x90", "presence_component_link_up": "0x90"}, at: "70m"},
}

// expand fills the {{ $labels.name }} of an annotation.
func expand(t *testing.T, s string, labels map[string]string) string {
	t.Helper()
	re := regexp.MustCompile(`\{\{\s*\$labels\.([a-zA-Z_]+)\s*\}\}`)
	out := re.ReplaceAllStringFunc(s, func(m string) string {
		return labels[re.FindStringSubmatch(m)[1]]
	})
	if strings.Contains(out, "{{") {
		t.Fatalf("annotation %q: this test only expands {{ $labels.x }}", s)
	}
	return out
}

func ruleUnitTests(t *testing.T, rf ruleFile, alerts []string) {
	t.Helper()
	type rule = struct {
		labels, annotations map[string]string
	}
	rules := map[string]rule{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			rules[r.Alert] = rule{r.Labels, r.Annotations}
		}
	}
	const job, instance = "presenced", "presenced:9464"
	tested := map[string]bool{}
	var tests []any
	for _, c := range alertCases {
		r, ok := rules[c.alert]
		if !ok {
			t.Fatalf("alertCases names %s, which alerts.yml does not have", c.alert)
		}
		if c.fires {
			tested[c.alert] = true
		}
		var input []any
		keys := make([]string, 0, len(c.series))
		for k := range c.series {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, sel := range keys {
			name, rest, _ := strings.Cut(sel, "{")
			rest = strings.TrimSuffix(rest, "}")
			lbls := fmt.Sprintf(`job=%q,instance=%q`, job, instance)
			if rest != "" {
				lbls += "," + rest
			}
			input = append(input, map[string]string{"series": name + "{" + lbls + "}", "values": c.series[sel]})
		}
		exp := []any{}
		if c.fires {
			labels := map[string]string{"job": job, "instance": instance}
			for k, v := range r.labels {
				labels[k] = v
			}
			for k, v := range c.labels {
				labels[k] = v
			}
			annotations := map[string]string{}
			for k, v := range r.annotations {
				annotations[k] = expand(t, v, labels)
			}
			exp = append(exp, map[string]any{"exp_labels": labels, "exp_annotations": annotations})
		}
		tests = append(tests, map[string]any{
			"interval":     "1m",
			"input_series": input,
			"alert_rule_test": []any{map[string]any{
				"eval_time": c.at, "alertname": c.alert, "exp_alerts": exp,
			}},
		})
	}
	for _, a := range alerts {
		if !tested[a] {
			t.Errorf("alert %s has no case in alertCases where it fires", a)
		}
	}
	abs, err := filepath.Abs(filepath.Join(root, "deploy/prometheus/alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := yaml.Marshal(map[string]any{
		"rule_files":          []string{abs},
		"evaluation_interval": "1m",
		"tests":               tests,
	})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "alerts_test.yml")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, "test", "rules", file)
}

// The tables of MongooseIM's PostgreSQL schema that roster provisioning
// touches, as in priv/pg.sql of esl/MongooseIM at
// 475087c6e8ccc752f20a810c3c47d00f78bc637d.
const mongooseimRosterSchema = `
CREATE TABLE users (
    username varchar(250),
    server varchar(250),
    "password" text NOT NULL,
    pass_details text,
    created_at TIMESTAMP NOT NULL DEFAULT now(),
    PRIMARY KEY (server, username)
);
CREATE TABLE rosterusers (
    server varchar(250) NOT NULL,
    username varchar(250) NOT NULL,
    jid text NOT NULL,
    nick text NOT NULL,
    subscription character(1) NOT NULL,
    ask character(1) NOT NULL,
    askmessage text NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT now(),
    PRIMARY KEY (server, username, jid)
);
CREATE TABLE rostergroups (
    server varchar(250) NOT NULL,
    username varchar(250) NOT NULL,
    jid text NOT NULL,
    grp text NOT NULL,
    PRIMARY KEY (server, username, jid, grp)
);
CREATE TABLE roster_version (
    server varchar(250),
    username varchar(250),
    version text NOT NULL,
    PRIMARY KEY (server, username)
);
`
