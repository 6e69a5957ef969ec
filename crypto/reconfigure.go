package crypto

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Reconfigure applies cfg to the running device: added peers are created,
// removed ones removed, and of the others only what changed (endpoint,
// tunnel address, ID) is updated, so their sessions carry on. A new
// private key, secret or period reinstalls every preshared key and asks
// every peer this host initiates to (see initiates) for a new handshake;
// a new private key also ends every
// session, as in WireGuard. A new ListenPort rebinds; if that fails the
// old port is bound again and nothing else is changed. Changing Name, MTU
// or ListenAddr is refused with ErrRestartRequired.
//
// Reconfigure is safe for concurrent use with the data path, which sees
// the change at its next batch, and with every other method.
func (d *Device) Reconfigure(cfg Config) error {
	cfg, err := cfg.normalized()
	if err != nil {
		return fmt.Errorf("invalid tunnel config: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.closed:
		return net.ErrClosed
	default:
	}
	old := d.cfg
	switch {
	case cfg.SocketDir != old.SocketDir:
		return fmt.Errorf("uapi directory %q → %q: %w", old.SocketDir, cfg.SocketDir, ErrRestartRequired)
	case cfg.Name != old.Name:
		return fmt.Errorf("name %q → %q: %w", old.Name, cfg.Name, ErrRestartRequired)
	case cfg.MTU != old.MTU:
		return fmt.Errorf("mtu %d → %d: %w", old.MTU, cfg.MTU, ErrRestartRequired)
	case cfg.ListenAddr != old.ListenAddr:
		return fmt.Errorf("listen address %v → %v: %w", old.ListenAddr, cfg.ListenAddr, ErrRestartRequired)
	}
	if cfg.ListenPort != old.ListenPort {
		if err := d.unlockedRebind(cfg.ListenPort); err != nil {
			return err
		}
	}

	ring := NewRing(cfg.Secret, cfg.RotateEvery)
	rekey := cfg.PrivateKey != old.PrivateKey || ring.every != d.ring.every || !bytes.Equal(ring.secret, d.ring.secret)
	epoch := d.epoch
	if rekey {
		epoch = ring.Primary(d.now())
	}
	var b strings.Builder
	if cfg.PrivateKey != old.PrivateKey {
		b.WriteString("private_key=" + cfg.PrivateKey.hex() + "\n")
	}
	b.WriteString(peersDiff(old.Peers, cfg.Peers, ring, epoch, cfg.PrivateKey.Public(), rekey))
	if b.Len() > 0 {
		if err := d.wg.IpcSet(b.String()); err != nil {
			return fmt.Errorf("cannot apply peers to wireguard: %w", err)
		}
	}
	d.cfg, d.ring, d.epoch = cfg, ring, epoch
	d.table.Store(d.unlockedNewTable(cfg))
	select {
	case d.kick <- struct{}{}:
	default:
	}
	if rekey {
		// Only to the peers this host initiates to: the hosts of a
		// cluster often reload at the same moment, and initiations that
		// cross may leave one direction dark (see rotateStep). The
		// initiator's WireGuard retries its initiation until the other
		// side holds the same keys.
		d.handshake(cfg.PrivateKey.Public(), time.Time{})
	}
	return nil
}

// unlockedRebind moves the UDP socket to port, restoring the old one on
// failure. d.mu must be held.
func (d *Device) unlockedRebind(port uint16) error {
	err := d.wg.IpcSet("listen_port=" + strconv.Itoa(int(port)) + "\n")
	if err == nil {
		d.cfg.ListenPort = port
		return d.readPort()
	}
	old := strconv.Itoa(int(d.port.Load()))
	if rerr := d.wg.IpcSet("listen_port=" + old + "\n"); rerr != nil {
		d.l.Error("cannot rebind the previous wireguard port", "error", rerr, "port", old)
	}
	return fmt.Errorf("cannot listen on udp port %d: %w", port, err)
}

// peersDiff returns the UAPI lines that turn the peers old into peers:
// removals first, so that a tunnel address moving to a new peer is free.
func peersDiff(old, peers []Peer, ring Ring, epoch int64, self Key, rekey bool) string {
	var b strings.Builder
	oldByKey := make(map[Key]Peer, len(old))
	for _, p := range old {
		oldByKey[p.PublicKey] = p
	}
	keep := make(map[Key]bool, len(peers))
	for _, p := range peers {
		keep[p.PublicKey] = true
	}
	for _, p := range old {
		if !keep[p.PublicKey] {
			uapiRemove(&b, p.PublicKey)
		}
	}
	for _, p := range peers {
		psk := ring.PeerPSK(epoch, self, p.PublicKey)
		if o, ok := oldByKey[p.PublicKey]; ok {
			uapiDiff(&b, o, p, psk, rekey)
		} else {
			uapiPeer(&b, p, psk)
		}
	}
	return b.String()
}
