package jidnorm

import (
	"errors"
	"testing"

	"mellium.im/xmpp/jid"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"alice@example.org/phone", "alice@example.org/phone", nil},
		{"Alice@Example.ORG.", "alice@example.org", nil}, // one trailing dot: stripped
		{"a@b..", "", ErrEmptyLabel},
		{"a@b../r", "", ErrEmptyLabel},
		{"0@..", "", ErrEmptyLabel},
		{"..", "", ErrEmptyLabel},
		{"0@.", "", nil}, // jid.Parse's own error
		{"", "", nil},
	} {
		j, err := Parse(tc.in)
		switch {
		case tc.want != "":
			if err != nil || j.String() != tc.want {
				t.Errorf("Parse(%q) = %q, %v; want %q", tc.in, j, err, tc.want)
				continue
			}
			// A fixed point: the normal form parses back to itself.
			for _, s := range []string{j.String(), j.Bare().String()} {
				if k, err := jid.Parse(s); err != nil || k.String() != s {
					t.Errorf("%q does not parse back to itself: %q, %v", s, k, err)
				}
			}
		case tc.err != nil:
			if !errors.Is(err, tc.err) {
				t.Errorf("Parse(%q) = %v, want %v", tc.in, err, tc.err)
			}
		default:
			if err == nil {
				t.Errorf("Parse(%q) = %q, want an error", tc.in, j)
			}
		}
	}
}
