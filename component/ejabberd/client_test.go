package ejabberd

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/presenced/presenced/presence"
)

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sessionStrings(list []presence.Session) []string {
	var out []string
	for _, s := range list {
		out = append(out, fmt.Sprintf("%s/%s %q %q %d", s.User, s.Resource, s.Show, s.Status, s.Priority))
	}
	return out
}

// TestParseSessions reads answers of the real ejabberd 23.01 (testdata,
// captured with curl from scripts/ejabberd's instance) and variations of
// them.
func TestParseSessions(t *testing.T) {
	captured := string(golden(t, "connected_users_info.json"))
	for _, tc := range []struct {
		name   string
		body   string
		domain string
		want   []string
		err    string
	}{
		{name: "captured, every domain", body: captured, want: []string{
			`bob@localhost/17423473008029264572179 "dnd" "busy" 0`,
			`alice@localhost/8531329053117156743163 "" "" -1`,
			`alice@localhost/16428880665018580913898 "away" "at lunch \"quoted\" é" 5`,
		}},
		{name: "captured, its domain", body: captured, domain: "localhost", want: []string{
			`bob@localhost/17423473008029264572179 "dnd" "busy" 0`,
			`alice@localhost/8531329053117156743163 "" "" -1`,
			`alice@localhost/16428880665018580913898 "away" "at lunch \"quoted\" é" 5`,
		}},
		{name: "captured, another domain", body: captured, domain: "example.org", want: nil},
		{name: "captured, empty", body: string(golden(t, "connected_users_info_empty.json")), want: nil},
		{name: "normalized, clamped, suffix is not a domain", domain: "example.org", body: `[
			{"jid":"Alice@Example.ORG/Tab","priority":300,"status":"chat","statustext":"hi"},
			{"jid":"eve@notexample.org/x","priority":0,"status":"available","statustext":""},
			{"jid":"carl@example.org/y","priority":-500,"status":"xa","statustext":""}]`,
			want: []string{`alice@example.org/Tab "chat" "hi" 127`, `carl@example.org/y "xa" "" -128`}},
		{name: "left out: unavailable, unknown status, bad or partial JIDs", body: `[
			{"jid":"a@example.org/1","priority":0,"status":"unavailable","statustext":""},
			{"jid":"b@example.org/2","priority":0,"status":"invisible","statustext":""},
			{"jid":"c@example.org/3","priority":0,"statustext":""},
			{"jid":"d@example.org","priority":0,"status":"available","statustext":""},
			{"jid":"example.org/5","priority":0,"status":"available","statustext":""},
			{"jid":"@@/6","priority":0,"status":"available","statustext":""},
			{"jid":"g@example.org/7","status":"away","statustext":"no priority"}]`,
			want: []string{`g@example.org/7 "away" "no priority" 0`}},
		{name: "not a list", body: `{"status":"error"}`, err: "malformed response"},
		{name: "null", body: `null`, err: "not a list of sessions"},
		{name: "truncated", body: captured[:len(captured)/2], err: "malformed response"},
		{name: "wrong type", body: `[{"jid":5}]`, err: "malformed response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := parseSessions([]byte(tc.body), tc.domain)
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "ejabberd: connected_users_info: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if got := sessionStrings(list); !slices.Equal(got, tc.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestParseError reads the error bodies of the real ejabberd 23.01.
func TestParseError(t *testing.T) {
	for _, tc := range []struct {
		file   string
		status int
		code   int
		msg    string
		is     error
		hint   string
	}{
		{"error_401.json", http.StatusUnauthorized, 10, "You are not authorized to call this command.", ErrUnauthorized, "Client.User"},
		{"error_403.json", http.StatusForbidden, 32, "AccessRules: Account does not have the right to perform the operation.", ErrForbidden, "api_permissions"},
		{"error_404.json", http.StatusNotFound, 40, "Endpoint not found.", nil, "check the URL"},
		{"error_400.json", http.StatusBadRequest, 0, "Request have unknown arguments: [a]", nil, ""},
		{"", http.StatusBadGateway, 0, `"<html>bad gateway</html>"`, nil, ""},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			body := []byte("<html>bad gateway</html>")
			if tc.file != "" {
				body = golden(t, tc.file)
			}
			e := parseError("connected_users_info", tc.status, body)
			if e.StatusCode != tc.status || e.Code != tc.code || e.Message != tc.msg {
				t.Errorf("%+v", e)
			}
			if !strings.HasPrefix(e.Error(), "ejabberd: connected_users_info: HTTP ") || !strings.Contains(e.Error(), tc.hint) {
				t.Errorf("Error() = %q", e.Error())
			}
			for _, s := range []error{ErrUnauthorized, ErrForbidden} {
				if errors.Is(e, s) != (s == tc.is) {
					t.Errorf("errors.Is(%v) = %v", s, !(s == tc.is))
				}
			}
		})
	}
}
