//go:build !linux

package wsload

import (
	"errors"
	"time"
)

// Options configure a Reader (see reader_linux.go).
type Options struct {
	Raw bool
	Nap time.Duration
}

// Reader needs epoll: on other systems New fails.
type Reader struct{}

var errLinuxOnly = errors.New("wsload: the reader needs Linux (epoll)")

func New(Options) (*Reader, error)          { return nil, errLinuxOnly }
func (r *Reader) Add(int, []byte, Handler)  {}
func (r *Reader) Lend(int, []byte, Handler) {}
func (r *Reader) Run() error                { return errLinuxOnly }
func (r *Reader) Stop()                     {}
func (c *Conn) Pong(payload []byte) error   { return errLinuxOnly }
