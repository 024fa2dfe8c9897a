package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/presenced/presenced/internal/app"
	"mellium.im/xmpp/jid"
)

// provision runs `presenced provision [flags] USER...`: it puts presenced
// on each user's roster on MongooseIM, which has no XEP-0356, through the
// admin GraphQL API (mongooseim-graphql and its credentials): the user
// subscribes to the component, and the subscription the component asks
// back is approved for the user. A running presenced must be connected to
// answer its part; this command only drives the API. USER "-" reads bare
// JIDs from stdin, one per line. For many users at once, the SQL recipe in
// docs/setup-mongooseim.md writes MongooseIM's tables directly.
func provision(args []string, getenv func(string) string, stdin io.Reader, stderr io.Writer) int {
	o, users, err := app.ParseArgs("presenced provision", args, getenv, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "presenced provision:", err)
		return 2
	}
	if o.MongooseIM.Endpoint == "" {
		fmt.Fprintln(stderr, "presenced provision: -mongooseim-graphql (PRESENCED_MONGOOSEIM_GRAPHQL) is required")
		return 2
	}
	var list []string
	for _, u := range users {
		if u != "-" {
			list = append(list, u)
			continue
		}
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
				list = append(list, line)
			}
		}
		if err := sc.Err(); err != nil {
			fmt.Fprintln(stderr, "presenced provision: reading stdin:", err)
			return 1
		}
	}
	if len(list) == 0 {
		fmt.Fprintln(stderr, "presenced provision: no users: give bare JIDs as arguments, or - to read them from stdin")
		return 2
	}
	for _, u := range list {
		if j, err := jid.Parse(u); err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
			fmt.Fprintf(stderr, "presenced provision: %q is not a bare user JID\n", u)
			return 2
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(len(list))*10*time.Second+time.Minute)
	defer cancel()
	err = o.MongooseIM.SubscribeAll(ctx, list, o.JID)
	failed := 0
	for _, e := range unwrapAll(err) {
		failed++
		fmt.Fprintln(stderr, "presenced provision:", e)
	}
	fmt.Fprintf(stderr, "presenced provision: %d of %d users on presenced's roster\n", len(list)-failed, len(list))
	if err != nil {
		return 1
	}
	return 0
}

// unwrapAll lists the errors errors.Join put together (or err alone).
func unwrapAll(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
