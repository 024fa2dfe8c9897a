package bridge

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/presenced/presenced/presence"
)

// wireEvents are changes of every kind, with every optional field of a
// change message set in one of them, at fixed times.
func wireEvents() []presence.Event {
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 123456789, time.UTC)
	return []presence.Event{
		{Seq: 5, Kind: presence.EventOnline, Time: t0, User: "alice@example.org",
			Resource: presence.Resource{Name: "phone", Show: presence.ShowAway, Status: "pl/1/1764234000123456789", Priority: 1,
				Statuses: []presence.LangStatus{{Lang: "de", Text: "unterwegs"}}, Idle: t0.Add(-time.Hour), Since: t0},
			Aggregate: presence.Aggregate{Online: true, Status: "at my desk", Priority: 5, Resource: "pc"}},
		{Seq: 6, Kind: presence.EventChanged, Time: t0.Add(time.Second), User: "web@example.org",
			Resource:  presence.Resource{Name: "tab-1", Show: presence.ShowChat, Status: "here", Since: t0, Expires: t0.Add(time.Minute)},
			Aggregate: presence.Aggregate{Online: true, Show: presence.ShowChat, Status: "here", Resource: "tab-1"}},
		{Seq: 7, Kind: presence.EventOffline, Time: t0.Add(2 * time.Second), User: "bob@example.org",
			Resource: presence.Resource{Name: "laptop", Show: presence.ShowDND, Status: "focus", Since: t0},
			Reason:   presence.ReasonTimeout},
	}
}

// goldenBytes compares got with testdata/<name> byte for byte (a newline
// after it in the file); -update rewrites the file. Unlike golden, it
// does not indent: the compact form is what the load tools scan.
func goldenBytes(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, append(bytes.Clone(got), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if want = bytes.TrimSuffix(want, []byte("\n")); !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file:\n got %s\nwant %s", name, got, want)
	}
}

// wireMessages encodes one message of every type the stream sends, as
// the server does, by golden file name.
func wireMessages(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	var frames [][]byte
	for _, ev := range wireEvents() {
		data, err := marshalChange(&ev)
		if err != nil {
			t.Fatal(err)
		}
		out["stream_change_"+string(ev.Kind)+".golden"] = data
		frames = append(frames, data)
	}
	out["stream_changes.golden"] = appendChanges(nil, frames)
	tr, _ := fixture()
	snap, err := encodeSnapshot(tr.View(), &viewFilter{all: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out["stream_snapshot.golden"] = snap
	e, err := marshalError(errorFrame{Type: "error", Code: "bad_filter", Message: "show must be a list"})
	if err != nil {
		t.Fatal(err)
	}
	out["stream_error.golden"] = e
	return out
}

// TestWireGolden pins the bytes of every stream message: a field renamed,
// moved or added, or a change of the envelope, fails here before it
// breaks a client or the load tools.
func TestWireGolden(t *testing.T) {
	for name, data := range wireMessages(t) {
		t.Run(name, func(t *testing.T) { goldenBytes(t, name, data) })
	}
	// appendChanges makes what changesLen says, which the frame header
	// in front of it (framed.go) was built for.
	frames := [][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`)}
	if got := appendChanges(nil, frames); len(got) != changesLen(frames) {
		t.Errorf("appendChanges made %d bytes, changesLen says %d", len(got), changesLen(frames))
	}
	if got := appendChanges(nil, frames[:1]); len(got) != changesLen(frames[:1]) {
		t.Errorf("one change: appendChanges made %d bytes, changesLen says %d", len(got), changesLen(frames[:1]))
	}
}

// The load tools' scans (cmd/presence-load/stream.go, cmd/presenced-fanout),
// as they read a message: the first occurrence of a key, then the number or
// the string up to the next quote.
func scanUint(b []byte, key string) (uint64, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	v, err := strconv.ParseUint(string(b[:n]), 10, 64)
	return v, err == nil
}

func scanString(b []byte, key string) (string, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return "", false
	}
	b = b[i+len(key):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return "", false
	}
	return string(b[:j]), true
}

// TestWireScanContract checks the stream's messages against what the load
// tools read out of them without decoding: if this fails, the tools count
// or time wrong (or nothing) although every client that decodes JSON is
// fine. The golden files pin the bytes; this says which of them matter.
func TestWireScanContract(t *testing.T) {
	msgs := wireMessages(t)
	evs := wireEvents()
	for _, ev := range evs {
		m := msgs["stream_change_"+string(ev.Kind)+".golden"]
		// presence-load finds change messages, alone or in "changes", by
		// this prefix, and takes what follows up to the next one as the
		// change.
		const key = `{"type":"change",`
		if !bytes.HasPrefix(m, []byte(key)) || bytes.Count(m, []byte(key)) != 1 {
			t.Errorf("%s: not one %s at the start: %s", ev.Kind, key, m)
		}
		if seq, ok := scanUint(m, `"seq":`); !ok || seq != ev.Seq {
			t.Errorf("%s: first seq %d, want %d", ev.Kind, seq, ev.Seq)
		}
		if kind, _ := scanString(m, `"event":"`); kind != string(ev.Kind) {
			t.Errorf("%s: first event %q", ev.Kind, kind)
		}
		// The logout latency is looked up by the change's JID, the first
		// one in the message.
		if jid, _ := scanString(m, `"jid":"`); jid != ev.User {
			t.Errorf("%s: first jid %q, want %q", ev.Kind, jid, ev.User)
		}
		// The login and status latencies come from the resource's status
		// (a marker "pl/<n>/<ns>"): the first status after the resource's
		// key, not the user's aggregate one.
		i := bytes.Index(m, []byte(`"resource":{`))
		if st, _ := scanString(m[max(i, 0):], `"status":"`); i < 0 || st != ev.Resource.Status {
			t.Errorf("%s: resource status %q, want %q", ev.Kind, st, ev.Resource.Status)
		}
		// presenced-fanout samples the latency from every time in a
		// message: the change's own, and no other field of that name.
		if n := bytes.Count(m, []byte(`"time":"`)); n != 1 {
			t.Errorf("%s: %d times", ev.Kind, n)
		}
		if ts, _ := scanString(m, `"time":"`); ts == "" {
			t.Errorf("%s: no time", ev.Kind)
		} else if tm, err := time.Parse(time.RFC3339Nano, ts); err != nil || !tm.Equal(ev.Time) {
			t.Errorf("%s: time %q (%v), want %v", ev.Kind, ts, err, ev.Time)
		}
	}
	// A "changes" message: presence-load splits it at every change
	// prefix, presenced-fanout counts `"type":"change"`; neither may match
	// the envelope itself.
	ch := msgs["stream_changes.golden"]
	if n := bytes.Count(ch, []byte(`{"type":"change",`)); n != len(evs) {
		t.Errorf("changes: %d change prefixes, want %d", n, len(evs))
	}
	if n := bytes.Count(ch, []byte(`"type":"change"`)); n != len(evs) {
		t.Errorf(`changes: %d "type":"change", want %d`, n, len(evs))
	}
	// A snapshot and an error are told by their prefix; a snapshot's
	// position is its first seq.
	snap := msgs["stream_snapshot.golden"]
	if !bytes.HasPrefix(snap, []byte(`{"type":"snapshot"`)) {
		t.Errorf("snapshot starts %.30s", snap)
	}
	if seq, ok := scanUint(snap, `"seq":`); !ok || seq != 4 { // fixture's
		t.Errorf("snapshot: first seq %d, want 4", seq)
	}
	if bytes.Contains(snap, []byte(`"type":"change"`)) {
		t.Error("a snapshot counts as changes")
	}
	if e := msgs["stream_error.golden"]; !bytes.HasPrefix(e, []byte(`{"type":"error"`)) {
		t.Errorf("error starts %.30s", e)
	}
}
