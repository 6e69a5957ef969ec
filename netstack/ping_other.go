//go:build !linux

package netstack

import (
	"errors"
	"net/netip"
)

func (o *echoOpener) dial(netip.Addr) (EchoConn, error) {
	return nil, errors.New("icmp echo egress is only relayed on linux")
}
