package presence_test

import (
	"context"
	"fmt"

	"github.com/presenced/presenced/presence"
)

func Example() {
	t := presence.New(presence.Options{})
	// What a dashboard shows first, and every later change, in order.
	users, _, sub := t.Subscribe(presence.Filter{}, 0)

	t.Apply(presence.Update{User: "alice@example.org", Resource: "pc", Available: true, Priority: 5})
	t.Apply(presence.Update{User: "alice@example.org", Resource: "phone", Available: true, Show: presence.ShowAway})

	buf := make([]presence.Event, 8)
	n, _ := sub.Read(context.Background(), buf)
	fmt.Println(len(users), "users at first")
	for _, ev := range buf[:n] {
		fmt.Println(ev.Seq, ev.Kind, ev.User+"/"+ev.Resource.Name, "winner:", ev.Aggregate.Resource)
	}
	// Output:
	// 0 users at first
	// 1 online alice@example.org/pc winner: pc
	// 2 online alice@example.org/phone winner: pc
}
