package jidnorm

import (
	"testing"

	"mellium.im/xmpp/jid"
)

// FuzzParse: whatever Parse accepts is a fixed point of the normal form.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"a@b", "a@b..", "0@..", "x@y./r", "a@b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := Parse(s)
		if err != nil {
			return
		}
		for _, n := range []string{j.String(), j.Bare().String()} {
			if k, err := jid.Parse(n); err != nil || k.String() != n {
				t.Fatalf("Parse(%q) gave %q, which parses to %q, %v", s, n, k, err)
			}
		}
	})
}
