package wsframe

import (
	"bytes"
	"strings"
	"testing"
)

func TestAppendHeader(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xff, 0xff}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		got := AppendHeader(nil, Text, tt.n)
		if !bytes.Equal(got, tt.want) {
			t.Errorf("header for %d bytes: % x, want % x", tt.n, got, tt.want)
		}
		if len(got) > MaxHeader {
			t.Errorf("header for %d bytes: %d bytes, over MaxHeader", tt.n, len(got))
		}
	}
}

// TestAppendFrameParses: what AppendFrame writes, back to back in one
// buffer, is what a client's Parser reads, at every length class.
func TestAppendFrameParses(t *testing.T) {
	type frame struct {
		op      byte
		payload []byte
	}
	want := []frame{{Ping, nil}, {Text, []byte("{}")}}
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		want = append(want, frame{Text, bytes.Repeat([]byte("x"), n)})
	}
	want = append(want, frame{Pong, []byte("hi")})
	var stream []byte
	for _, f := range want {
		stream = AppendFrame(stream, f.op, f.payload)
	}
	var got []frame
	if err := new(Parser).Feed(stream, func(fin bool, op byte, p []byte) bool {
		if !fin {
			t.Errorf("frame %d not final", len(got))
		}
		got = append(got, frame{op, bytes.Clone(p)})
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].op != want[i].op || !bytes.Equal(got[i].payload, want[i].payload) {
			t.Errorf("frame %d: op %#x, %d bytes; want %#x, %d bytes", i, got[i].op, len(got[i].payload), want[i].op, len(want[i].payload))
		}
	}
}

func TestAppendClose(t *testing.T) {
	for _, tt := range []struct {
		name, reason string
		wantLen      int
	}{
		{"short", "bye", 3},
		{"cut to fit", strings.Repeat("x", 200), 123},
		{"cut at a rune", strings.Repeat("x", 122) + "é", 122},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := AppendClose(nil, 4008, tt.reason)
			var got []byte
			if err := new(Parser).Feed(f, func(fin bool, op byte, p []byte) bool {
				if !fin || op != Close {
					t.Fatalf("frame fin %v op %#x", fin, op)
				}
				got = bytes.Clone(p)
				return true
			}); err != nil {
				t.Fatal(err)
			}
			code, reason, err := ParseClose(got)
			if err != nil || code != 4008 || len(reason) != tt.wantLen {
				t.Fatalf("ParseClose = %d %q %v", code, reason, err)
			}
		})
	}
}
