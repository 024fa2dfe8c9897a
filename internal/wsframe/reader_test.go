package wsframe

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// clientFrame is a frame as a client sends it: b0 is the first byte (FIN,
// RSV and opcode), masked with a fixed key unless unmasked.
func clientFrame(b0 byte, payload []byte, unmasked bool) []byte {
	out := []byte{b0}
	bit := byte(0x80)
	if unmasked {
		bit = 0
	}
	switch n := len(payload); {
	case n < 126:
		out = append(out, bit|byte(n))
	case n <= 0xffff:
		out = append(out, bit|126, byte(n>>8), byte(n))
	default:
		out = append(out, bit|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	if unmasked {
		return append(out, payload...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i&3])
	}
	return out
}

func TestReader(t *testing.T) {
	const fin = 0x80
	text := func(s string) []byte { return clientFrame(fin|Text, []byte(s), false) }
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	type msg struct {
		op      byte
		payload string
	}
	for _, tt := range []struct {
		name  string
		in    []byte
		want  []msg
		code  int   // the CloseError's code after want; 0: see err
		err   error // the error after want when code is 0
		limit int   // 0: 64
	}{
		{name: "text", in: text("hello"), want: []msg{{Text, "hello"}}, err: io.EOF},
		{name: "empty text", in: text(""), want: []msg{{Text, ""}}, err: io.EOF},
		{name: "binary is returned", in: clientFrame(fin|Binary, []byte{0, 1}, false), want: []msg{{Binary, "\x00\x01"}}, err: io.EOF},
		{name: "fragments joined around a ping", in: cat(clientFrame(Text, []byte("he"), false), clientFrame(fin|Ping, []byte("p"), false),
			clientFrame(Continuation, []byte("ll"), false), clientFrame(fin|Continuation, []byte("o"), false)),
			want: []msg{{Ping, "p"}, {Text, "hello"}}, err: io.EOF},
		{name: "16-bit length", in: text(strings.Repeat("x", 200)), want: []msg{{Text, strings.Repeat("x", 200)}}, limit: 300, err: io.EOF},
		{name: "pong and close", in: cat(clientFrame(fin|Pong, nil, false), clientFrame(fin|Close, []byte{0x03, 0xe8, 'b', 'y', 'e'}, false)),
			want: []msg{{Pong, ""}, {Close, "\x03\xe8bye"}}, err: io.EOF},
		{name: "close without code", in: clientFrame(fin|Close, nil, false), want: []msg{{Close, ""}}, err: io.EOF},
		{name: "application close code", in: clientFrame(fin|Close, []byte{0x0f, 0xa0}, false), want: []msg{{Close, "\x0f\xa0"}}, err: io.EOF},
		{name: "too big", in: text(strings.Repeat("x", 65)), code: CloseTooBig},
		{name: "too big with 64-bit length, from the header", in: clientFrame(fin|Text, make([]byte, 70000), false)[:20], code: CloseTooBig},
		{name: "too big across fragments", in: cat(clientFrame(Text, make([]byte, 40), false), clientFrame(fin|Continuation, make([]byte, 40), false)), code: CloseTooBig},
		{name: "unmasked", in: clientFrame(fin|Text, []byte("hi"), true), code: CloseProtocolError},
		{name: "reserved bit", in: clientFrame(fin|0x40|Text, []byte("hi"), false), code: CloseProtocolError},
		{name: "reserved data opcode", in: clientFrame(fin|0x3, []byte("hi"), false), code: CloseProtocolError},
		{name: "reserved control opcode", in: clientFrame(fin|0xB, nil, false), code: CloseProtocolError},
		{name: "fragmented ping", in: clientFrame(Ping, []byte("p"), false), code: CloseProtocolError},
		{name: "long ping", in: clientFrame(fin|Ping, make([]byte, 126), false), code: CloseProtocolError, limit: 1000},
		{name: "lone continuation", in: clientFrame(fin|Continuation, []byte("x"), false), code: CloseProtocolError},
		{name: "text inside a fragmented message", in: cat(clientFrame(Text, []byte("a"), false), text("b")), code: CloseProtocolError},
		{name: "invalid UTF-8", in: text("\xff\xfe"), code: CloseInvalidData},
		{name: "UTF-8 split across fragments is fine", in: cat(clientFrame(Text, []byte("\xc3"), false), clientFrame(fin|Continuation, []byte("\xa9"), false)),
			want: []msg{{Text, "é"}}, err: io.EOF},
		{name: "close of one byte", in: clientFrame(fin|Close, []byte{3}, false), code: CloseProtocolError},
		{name: "close code 1005 on the wire", in: clientFrame(fin|Close, []byte{0x03, 0xed}, false), code: CloseProtocolError},
		{name: "close code 999", in: clientFrame(fin|Close, []byte{0x03, 0xe7}, false), code: CloseProtocolError},
		{name: "close code 5000", in: clientFrame(fin|Close, []byte{0x13, 0x88}, false), code: CloseProtocolError},
		{name: "close reason not UTF-8", in: clientFrame(fin|Close, []byte{0x03, 0xe8, 0xff}, false), code: CloseInvalidData},
		{name: "cut in the header", in: text("hello")[:1], err: io.ErrUnexpectedEOF},
		{name: "cut in the payload", in: text("hello")[:8], err: io.ErrUnexpectedEOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.limit
			if limit == 0 {
				limit = 64
			}
			r := NewReader(bytes.NewReader(tt.in), limit)
			for _, w := range tt.want {
				op, p, err := r.Next()
				if err != nil || op != w.op || string(p) != w.payload {
					t.Fatalf("Next = %#x %q %v, want %#x %q", op, p, err, w.op, w.payload)
				}
			}
			_, _, err := r.Next()
			var ce *CloseError
			switch {
			case tt.code != 0:
				if !errors.As(err, &ce) || ce.Code != tt.code || ce.Reason == "" || !strings.HasPrefix(err.Error(), "wsframe: ") {
					t.Fatalf("err %v, want close %d", err, tt.code)
				}
			case err != tt.err:
				t.Fatalf("err %v, want %v", err, tt.err)
			}
		})
	}
}
