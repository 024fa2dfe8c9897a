package presence

import (
	"errors"
	"testing"
)

func TestLimits(t *testing.T) {
	on := func(user, res string) Update { return Update{User: user, Resource: res, Available: true} }
	off := func(user, res string) Update { return Update{User: user, Resource: res} }
	for _, tt := range []struct {
		name    string
		opts    Options
		updates []Update
		wantErr []error // per update
		online  []string
		known   int
	}{
		{
			name:    "resources per user",
			opts:    Options{MaxResources: 2},
			updates: []Update{on("a@x", "1"), on("a@x", "2"), on("a@x", "3"), on("a@x", "2"), off("a@x", "1"), on("a@x", "3")},
			wantErr: []error{nil, nil, ErrTooManyResources, nil, nil, nil},
			online:  []string{"a@x"},
			known:   1,
		},
		{
			name:    "users: an offline user makes room",
			opts:    Options{MaxUsers: 2},
			updates: []Update{on("a@x", "1"), on("b@x", "1"), off("a@x", "1"), on("c@x", "1")},
			wantErr: []error{nil, nil, nil, nil},
			online:  []string{"b@x", "c@x"},
			known:   2,
		},
		{
			name:    "users: all online, the new one is refused",
			opts:    Options{MaxUsers: 2},
			updates: []Update{on("a@x", "1"), on("b@x", "1"), on("c@x", "1"), on("a@x", "2")},
			wantErr: []error{nil, nil, ErrTooManyUsers, nil},
			online:  []string{"a@x", "b@x"},
			known:   2,
		},
		{
			name:    "users: one that comes back is not forgotten",
			opts:    Options{MaxUsers: 2},
			updates: []Update{on("a@x", "1"), off("a@x", "1"), on("a@x", "1"), on("b@x", "1"), on("c@x", "1")},
			wantErr: []error{nil, nil, nil, nil, ErrTooManyUsers},
			online:  []string{"a@x", "b@x"},
			known:   2,
		},
		{
			name:    "no bounds",
			updates: []Update{on("a@x", "1"), on("a@x", "2"), on("b@x", "1")},
			wantErr: []error{nil, nil, nil},
			online:  []string{"a@x", "b@x"},
			known:   2,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := New(tt.opts)
			refused := 0
			for i, u := range tt.updates {
				if _, _, err := tr.Try(u); !errors.Is(err, tt.wantErr[i]) {
					t.Fatalf("update %d (%+v): %v, want %v", i, u, err, tt.wantErr[i])
				} else if err != nil {
					refused++
				}
			}
			var online []string
			users, _ := tr.Snapshot()
			for _, u := range users {
				if u.Online {
					online = append(online, u.JID)
				}
			}
			if len(online) != len(tt.online) || (len(online) > 0 && !equalSets(online, tt.online)) {
				t.Errorf("online %v, want %v", online, tt.online)
			}
			if n := len(tr.Users()); n != tt.known {
				t.Errorf("%d users known, want %d", n, tt.known)
			}
			if tr.Refused() != uint64(refused) {
				t.Errorf("Refused() = %d, want %d", tr.Refused(), refused)
			}
		})
	}
}

func equalSets(a, b []string) bool {
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
