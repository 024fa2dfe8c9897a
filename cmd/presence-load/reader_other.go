//go:build !linux

package main

import (
	"context"
	"errors"
	"net/url"
	"time"
)

// The stream readers use epoll and raw sockets (reader_linux.go).

type reader struct {
	s *streams
}

var errLinuxOnly = errors.New("the WebSocket subscribers need Linux (epoll)")

func newReader(*streams) (*reader, error) { return nil, errLinuxOnly }
func (r *reader) add(*wsSub, int, []byte) {}
func (r *reader) stop()                   {}
func (r *reader) run()                    {}
func raiseFileLimit()                     {}
func dialStream(context.Context, *url.URL, string, uint64, time.Duration) (int, []byte, error) {
	return -1, nil, errLinuxOnly
}
