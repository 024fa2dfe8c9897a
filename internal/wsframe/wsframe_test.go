package wsframe

import (
	"bytes"
	"testing"
)

func frame(opcode byte, fin bool, payload []byte) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, byte(n))
	case n <= 0xffff:
		out = append(out, 126, byte(n>>8), byte(n))
	default:
		out = append(out, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(out, payload...)
}

// TestFeedInPieces feeds the same stream cut at every possible place in
// two: the frames come out whole and in order.
func TestFeedInPieces(t *testing.T) {
	var stream []byte
	want := [][]byte{[]byte("a"), bytes.Repeat([]byte("b"), 300), bytes.Repeat([]byte("c"), 70000), {}}
	for _, w := range want {
		stream = append(stream, frame(Text, true, w)...)
	}
	stream = append(stream, frame(Ping, true, nil)...)
	for cut := 0; cut <= len(stream); cut += 997 {
		var p Parser
		var got [][]byte
		var ops []byte
		f := func(fin bool, op byte, payload []byte) bool {
			got = append(got, bytes.Clone(payload))
			ops = append(ops, op)
			return true
		}
		if err := p.Feed(stream[:cut], f); err != nil {
			t.Fatal(err)
		}
		if err := p.Feed(stream[cut:], f); err != nil {
			t.Fatal(err)
		}
		if len(got) != 5 || ops[4] != Ping {
			t.Fatalf("cut %d: %d frames %v", cut, len(got), ops)
		}
		for i, w := range want {
			if !bytes.Equal(got[i], w) {
				t.Fatalf("cut %d: frame %d is %d bytes, want %d", cut, i, len(got[i]), len(w))
			}
		}
	}
}

func TestFeedRefusesClientFrames(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
	}{
		{"masked", []byte{0x81, 0x81, 1, 2, 3, 4, 'x'}},
		{"reserved bit", []byte{0xc1, 0x01, 'x'}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var p Parser
			if err := p.Feed(tt.in, func(bool, byte, []byte) bool { return true }); err != ErrBadFrame {
				t.Fatalf("err %v", err)
			}
		})
	}
}
