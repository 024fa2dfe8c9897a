package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

type resource struct {
	Resource string `json:"resource"`
	Show     string `json:"show"`
	Status   string `json:"status"`
	Priority int    `json:"priority"`
}

type frame struct {
	Type     string    `json:"type"`
	Seq      uint64    `json:"seq"`
	Event    string    `json:"event"`
	Time     time.Time `json:"time"`
	JID      string    `json:"jid"`
	Reason   string    `json:"reason"`
	Resource resource  `json:"resource"`
	User     struct {
		Online bool   `json:"online"`
		Show   string `json:"show"`
		Status string `json:"status"`
	} `json:"user"`
	Users []struct {
		JID       string     `json:"jid"`
		Online    bool       `json:"online"`
		Show      string     `json:"show"`
		Status    string     `json:"status"`
		Resources []resource `json:"resources"`
	} `json:"users"`
}

func main() {
	url := flag.String("url", "ws://127.0.0.1:8080/v1/stream", "presenced's WebSocket stream")
	flag.Parse()
	var conn *websocket.Conn
	var err error
	for range 50 { // presenced may still be starting
		if conn, _, err = websocket.DefaultDialer.Dial(*url, nil); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "presenced-watch:", err)
		os.Exit(1)
	}
	defer conn.Close()
	var pending []json.RawMessage // frames of a "changes" message (a coalesced backlog)
	for {
		var f frame
		if len(pending) == 0 {
			_, data, err := conn.ReadMessage()
			if err != nil {
				fmt.Fprintln(os.Stderr, "presenced-watch: stream ended:", err)
				os.Exit(1)
			}
			var bundle struct {
				Type   string            `json:"type"`
				Frames []json.RawMessage `json:"frames"`
			}
			if json.Unmarshal(data, &bundle) == nil && bundle.Type == "changes" {
				pending = bundle.Frames
			} else {
				pending = []json.RawMessage{data}
			}
		}
		if err := json.Unmarshal(pending[0], &f); err != nil {
			fmt.Fprintln(os.Stderr, "presenced-watch: bad frame:", err)
			os.Exit(1)
		}
		pending = pending[1:]
		switch f.Type {
		case "snapshot":
			online := 0
			for _, u := range f.Users {
				if u.Online {
					online++
				}
			}
			fmt.Printf("snapshot at #%d: %d users known, %d online\n", f.Seq, len(f.Users), online)
			for _, u := range f.Users {
				fmt.Printf("  %-24s %-9s %-20q %d resource(s)\n", u.JID, u.Show, u.Status, len(u.Resources))
			}
		case "change":
			why := ""
			if f.Reason != "" {
				why = " (" + f.Reason + ")"
			}
			fmt.Printf("%s #%-5d %-24s %-8s %-32s -> user %s %q\n",
				f.Time.Local().Format("15:04:05"), f.Seq, f.JID, f.Event+why,
				short(f.Resource.Resource)+": "+f.Resource.Show+" "+fmt.Sprintf("%q", f.Resource.Status), f.User.Show, f.User.Status)
		}
	}
}

// short keeps long server-generated resource names readable.
func short(s string) string {
	if len(s) > 8 {
		return s[:8] + "…"
	}
	return strings.TrimSpace(s)
}
