package crypto

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// PeerStatus is one peer as the device sees it. It is a copy, owned by the
// caller.
type PeerStatus struct {
	// PublicKey is the peer's public key.
	PublicKey Key
	// ID and TunnelAddr are the peer's configured ID and tunnel address.
	ID         netip.AddrPort
	TunnelAddr netip.Addr
	// Endpoint is where WireGuard currently sends to: the configured
	// endpoint, or where the peer's last authenticated packet came from.
	// Zero when unknown.
	Endpoint netip.AddrPort
	// LastHandshake is when the last handshake completed; zero if none.
	LastHandshake time.Time
	// RxBytes and TxBytes count WireGuard's bytes to and from the peer.
	RxBytes, TxBytes uint64
	// PSK reports whether a preshared key is in force, and PSKEpoch its
	// epoch.
	PSK      bool
	PSKEpoch int64
}

// Status returns every configured peer's state, read from wireguard-go, in
// the order of the configuration. It is safe for concurrent use and is
// not meant for the data path (it formats and parses text).
func (d *Device) Status() []PeerStatus {
	d.mu.Lock()
	peers := d.cfg.Peers
	epoch, psk := d.epoch, d.ring.Enabled()
	d.mu.Unlock()
	live := d.wgPeers()
	out := make([]PeerStatus, 0, len(peers))
	for _, p := range peers {
		s := live[p.PublicKey]
		s.PublicKey, s.ID, s.TunnelAddr = p.PublicKey, p.ID, p.TunnelAddr
		s.PSK, s.PSKEpoch = psk, epoch
		out = append(out, s)
	}
	return out
}

// wgPeers parses wireguard-go's UAPI dump into per-peer status.
func (d *Device) wgPeers() map[Key]PeerStatus {
	dump, err := d.wg.IpcGet()
	out := make(map[Key]PeerStatus)
	if err != nil {
		return out
	}
	var cur *PeerStatus
	var key Key
	var sec, nsec int64
	flush := func() {
		if cur != nil {
			if sec != 0 || nsec != 0 {
				cur.LastHandshake = time.Unix(sec, nsec)
			}
			out[key] = *cur
		}
	}
	for _, line := range strings.Split(dump, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if k == "public_key" {
			flush()
			key, _ = parseHexKey(v)
			cur, sec, nsec = &PeerStatus{}, 0, 0
			continue
		}
		if cur == nil {
			continue
		}
		switch k {
		case "endpoint":
			cur.Endpoint, _ = netip.ParseAddrPort(v)
		case "last_handshake_time_sec":
			sec, _ = strconv.ParseInt(v, 10, 64)
		case "last_handshake_time_nsec":
			nsec, _ = strconv.ParseInt(v, 10, 64)
		case "rx_bytes":
			cur.RxBytes, _ = strconv.ParseUint(v, 10, 64)
		case "tx_bytes":
			cur.TxBytes, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	flush()
	return out
}
