package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"

	"github.com/presenced/presenced/internal/app"
	"mellium.im/xmpp/jid"
)

// provision runs `presenced provision [flags] USER...`: it puts presenced
// on each user's roster on MongooseIM (mongooseim.Provisioner, configured
// by app.Config.Provisioner from -mongooseim-rest, its credentials and
// -mongooseim-database), for users offline and online, whether presenced
// runs or not. USER "-" reads bare JIDs from stdin, one per line. It
// prints a line per user it could not provision and exits 1 if there was
// one; running it again is safe.
func provision(args []string, getenv func(string) string, stdin io.Reader, stderr io.Writer) int {
	o, users, err := app.ParseArgs("presenced provision", args, getenv, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "presenced provision:", err)
		return 2
	}
	p, err := o.Provisioner()
	if err != nil {
		fmt.Fprintln(stderr, "presenced provision:", err)
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
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	outs, err := p.Provision(ctx, list)
	done := 0
	for _, out := range outs {
		switch {
		case out.Err == nil:
			done++
		case err == nil || !errors.Is(out.Err, err):
			fmt.Fprintln(stderr, "presenced provision:", out.Err)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "presenced provision: stopped:", err)
	}
	fmt.Fprintf(stderr, "presenced provision: %d of %d users have presenced on their roster (from or both)\n", done, len(outs))
	if err != nil || done < len(outs) {
		return 1
	}
	return 0
}
