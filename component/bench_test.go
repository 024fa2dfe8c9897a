package component

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	mcomp "mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/presence"
)

// The three benchmarks decode the same presence stanzas (1,000 users, each
// stanza a new status, so each one is a change) and report ns per stanza:
//
//   - DecodeBaseline: encoding/xml alone decoding the bytes into structs,
//     from memory (the reference for the target: the component must reach
//     at least half its rate);
//   - SessionLoop: mellium's session loop alone over loopback from the fake
//     server, with a handler that only counts;
//   - ComponentToTracker: the whole path, fake server → loopback → mellium
//     → handler → Tracker.Apply → an event on a subscription.

func appendStanza(buf []byte, i int) []byte {
	buf = append(buf, "<presence from='user"...)
	buf = strconv.AppendInt(buf, int64(i%1000), 10)
	buf = append(buf, "@localhost/pc' to='presence.localhost'><show>away</show><status>status "...)
	buf = strconv.AppendInt(buf, int64(i), 10)
	buf = append(buf, "</status><priority>5</priority></presence>"...)
	return buf
}

func BenchmarkDecodeBaseline(b *testing.B) {
	var stream []byte
	stream = append(stream, "<stream xmlns='jabber:component:accept'>"...)
	for i := range b.N {
		stream = appendStanza(stream, i)
	}
	stream = append(stream, "</stream>"...)
	b.SetBytes(int64(len(stream) / max(b.N, 1)))
	b.ReportAllocs()
	b.ResetTimer()
	d := xml.NewDecoder(bytes.NewReader(stream))
	n := 0
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "presence" {
			var p presenceStanza
			if err := d.DecodeElement(&p, &se); err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	if n != b.N {
		b.Fatalf("decoded %d of %d", n, b.N)
	}
}

// feedStanzas writes n stanzas to conn from a goroutine.
func feedStanzas(conn io.Writer, n int) {
	go func() {
		w := bufio.NewWriterSize(conn, 64<<10)
		buf := make([]byte, 0, 256)
		for i := range n {
			buf = appendStanza(buf[:0], i)
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
		w.Flush()
	}()
}

func BenchmarkSessionLoop(b *testing.B) {
	srv := newFakeServer(&testing.T{}, "secret", false)
	conn, err := dialRaw(srv.ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	s, err := mcomp.NewSession(context.Background(), jid.MustParse("presence.localhost"), []byte("secret"), conn)
	if err != nil {
		b.Fatal(err)
	}
	server := <-srv.conns
	defer server.Close()
	var count atomic.Int64
	done := make(chan struct{})
	want := int64(b.N)
	go s.Serve(xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		if count.Add(1) == want {
			close(done)
		}
		return nil
	}))
	b.ReportAllocs()
	b.ResetTimer()
	feedStanzas(server, b.N)
	<-done
	b.StopTimer()
	conn.Close()
}

func BenchmarkComponentToTracker(b *testing.B) {
	srv := newFakeServer(&testing.T{}, "secret", false)
	tr := presence.New(presence.Options{})
	c, err := New(Config{JID: jid.MustParse("presence.localhost"), Secret: "secret", Addr: srv.ln.Addr().String(),
		Tracker: tr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error)
	go func() { served <- c.Serve(ctx) }()
	server := <-srv.conns
	_, _, sub := tr.Subscribe(presence.Filter{}, 1<<16)
	b.ReportAllocs()
	b.ResetTimer()
	feedStanzas(server, b.N)
	buf := make([]presence.Event, 1024)
	for got := 0; got < b.N; {
		n, err := sub.Read(ctx, buf)
		if err != nil {
			b.Fatal(err)
		}
		got += n
	}
	b.StopTimer()
	cancel()
	<-served
	server.Close()
}
