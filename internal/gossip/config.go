package gossip

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vxwire/vxwire/internal/safe"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultPort is the gossip port, TCP and UDP, as Docker's NetworkDB.
	DefaultPort = 7946
	// DefaultDeadAfter bounds how long the records of a failed host stay.
	DefaultDeadAfter = 30 * time.Second
	// DefaultForgetFailedAfter is how long a failed (not departed) host is
	// still listed by Members.
	DefaultForgetFailedAfter = 10 * time.Minute
)

// keyInfo is the HKDF info string that binds the derived key to its use.
const keyInfo = "vxwire gossip"

// maxBroadcast is the largest state message sent by UDP gossip; a larger
// record set is announced by a notice and fetched by TCP (see doc.go).
const maxBroadcast = 1024

// Config configures a Cluster. The zero value of every field except
// NodeName and BindAddr selects a default. A Config is copied by New and
// not referenced afterwards.
type Config struct {
	// NodeName is this host's name; it must be unique in the cluster and
	// is the Host of every record this host announces.
	NodeName string
	// BindAddr is the underlay address gossip binds to and advertises;
	// with NoUnderlay, the Tunnel's address.
	BindAddr netip.Addr
	// Tunnel, when set, is the stack on this host's WireGuard tunnel
	// address: gossip also listens there, and reaches the peers named in
	// ViaTunnel through it (see tunnel.go).
	Tunnel Tunnel
	// ViaTunnel maps a peer's gossip address to its tunnel address, for
	// the peers gossip reaches only inside WireGuard. Underlay packets
	// and connections from those tunnel addresses are refused.
	ViaTunnel map[netip.Addr]netip.Addr
	// NoUnderlay runs gossip inside the Tunnel only (a host behind NAT):
	// nothing binds on the underlay, BindAddr must be the tunnel address,
	// and ViaTunnel must name every peer.
	NoUnderlay bool
	// Port is the gossip port for TCP and UDP. Zero selects DefaultPort; a
	// negative value lets the kernel pick a free port (see Cluster.Addr).
	Port int
	// Seeds are the gossip addresses of configured peers. New joins them in
	// the background, retrying while none answers and whenever this host
	// finds itself alone.
	Seeds []netip.AddrPort
	// Peers, when not nil, are the only addresses gossip accepts packets
	// and connections from (besides BindAddr); others are dropped and
	// counted as RefusedStranger. SetPeers changes them later. Peers
	// need a Secret: New refuses them without one.
	Peers []netip.Addr
	// Secret is the cluster secret. When non-nil, all gossip is encrypted
	// (AES-256-GCM) with a key derived by HKDF-SHA256 from Secret with the
	// info string "vxwire gossip" and no salt.
	Secret []byte
	// DeadAfter bounds how long the records of a host that stopped
	// answering remain visible; memberlist's probe and suspicion timings
	// are derived from it (see timings). Default DefaultDeadAfter.
	DeadAfter time.Duration
	// ForgetFailedAfter is how long a failed host is still listed by
	// Members. Default DefaultForgetFailedAfter.
	ForgetFailedAfter time.Duration
	// GossipInterval overrides the derived UDP gossip interval; tests that
	// run many members set it to spread the load.
	GossipInterval time.Duration
	// OnJoin, when set, is called with the name of a host that joins the
	// cluster or comes back after it failed or left (memberlist's join
	// event), not for this host. It is called with memberlist's node lock
	// held: it must not block or call into the Cluster.
	OnJoin func(name string)
	// Crash receives panics of the cluster's goroutines: the join and
	// maintenance loops and the transport's filters report to Crash.Died;
	// a panic while handling one received message or one send is logged,
	// counted under RecoveredMessage or RecoveredSend, and drops only
	// that message. memberlist's own goroutines (its UDP and TCP
	// listeners, probes, gossip ticker) cannot be wrapped; the handlers
	// they call here recover.
	Crash safe.Reporter

	// transport, when set, opens the transport in place of memberlist's
	// network transport (simulations in this package's tests). Streams
	// are then dialled through it, not from BindAddr.
	transport func(*memberlist.Config) (memberlist.NodeAwareTransport, error)
}

// Kinds under which Config.Crash counts recovered panics.
const (
	// RecoveredMessage is a panic while handling one received message.
	RecoveredMessage = "gossip message"
	// RecoveredSend is a panic while sending one message.
	RecoveredSend = "gossip send"
)

// timings are the memberlist settings derived from DeadAfter.
//
// A failed host H is removed from every view after at most
//
//	first probe of H      ≤ 2·P   (someone probes H within one interval; the
//	                                probe, indirect probes included, ends
//	                                within the next)
//	suspicion timeout     ≤ Smax·Smult·max(1, log10 N)·P = 2·4·log10 N·P
//	                      = 16·P for N ≤ 100, 24·P for N ≤ 1000
//	dead gossip + slack   ≤ 2·P
//
// that is 20·P for up to 100 hosts and 28·P for up to 1000. With
// P = DeadAfter/30 the bound holds with margin up to 1000 hosts; for the
// default DeadAfter of 30 s, P = 1 s and the probe timeout is 500 ms,
// memberlist's LAN defaults. Awareness (the slow-down memberlist applies
// when this host itself is unhealthy) is capped at 2× so that a briefly
// overloaded observer still meets the bound in the common case.
type timings struct {
	probeInterval  time.Duration
	probeTimeout   time.Duration
	gossipInterval time.Duration
	pushPull       time.Duration
	tcpTimeout     time.Duration
	// joinMax caps the backoff between joins of a host that is alone: a
	// third of DeadAfter, so that after a cut heals the hosts meet again
	// well within DeadAfter (one join attempt in flight, up to tcpTimeout,
	// plus one backoff).
	joinMax  time.Duration
	maintain time.Duration
	// leave bounds Close's wait for its leave message to be gossiped.
	leave time.Duration
}

// maxLeaveWait caps timings.leave, so that a host stops within a second
// however long its gossip interval.
const maxLeaveWait = 400 * time.Millisecond

func deriveTimings(c *Config) timings {
	p := max(c.DeadAfter/30, 20*time.Millisecond)
	t := timings{
		probeInterval:  p,
		probeTimeout:   p / 2,
		gossipInterval: min(max(p/5, 10*time.Millisecond), 200*time.Millisecond),
		pushPull:       max(c.DeadAfter/2, 100*time.Millisecond),
		tcpTimeout:     min(max(c.DeadAfter/6, 200*time.Millisecond), 10*time.Second),
		joinMax:        min(max(c.DeadAfter/3, p), 10*time.Second),
		maintain:       max(c.DeadAfter/10, 10*time.Millisecond),
	}
	if c.GossipInterval > 0 {
		t.gossipInterval = c.GossipInterval
	}
	// A queued broadcast goes out at the next gossip tick to some live
	// member; two ticks leave room for a busy host.
	t.leave = min(max(2*t.gossipInterval, 50*time.Millisecond), maxLeaveWait)
	return t
}

// withDefaults validates c and returns a copy with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	if c.NodeName == "" || len(c.NodeName) > maxString {
		return c, fmt.Errorf("gossip: node name must have 1 to %d bytes", maxString)
	}
	if !c.BindAddr.IsValid() || c.BindAddr.IsUnspecified() {
		return c, errors.New("gossip: bind address must be a specific address")
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if (c.NoUnderlay || len(c.ViaTunnel) > 0) && c.Tunnel == nil {
		return c, errors.New("gossip: gossip inside the tunnel needs a tunnel")
	}
	if c.NoUnderlay && c.BindAddr != c.Tunnel.Addr() {
		return c, fmt.Errorf("gossip: behind nat, bind address %v must be the tunnel address %v", c.BindAddr, c.Tunnel.Addr())
	}
	if c.Port > 65535 {
		return c, fmt.Errorf("gossip: port %d out of range 1-65535", c.Port)
	}
	if c.Secret != nil && len(c.Secret) == 0 {
		return c, errors.New("gossip: secret is empty")
	}
	if len(c.Peers) > 0 && c.Secret == nil {
		// The daemon's config file refuses this too (host.secret_file):
		// with peers, gossip is always authenticated.
		return c, errors.New("gossip: peers need a secret: unauthenticated gossip would take records from anyone who reaches the port")
	}
	setDefault(&c.DeadAfter, DefaultDeadAfter)
	setDefault(&c.ForgetFailedAfter, DefaultForgetFailedAfter)
	c.Seeds = append([]netip.AddrPort(nil), c.Seeds...)
	if c.Peers != nil {
		c.Peers = append([]netip.Addr{c.BindAddr}, c.Peers...)
	}
	c.Secret = append([]byte(nil), c.Secret...)
	return c, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// deriveKey turns the cluster secret into memberlist's AES-256 key.
func deriveKey(secret []byte) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, secret, nil, keyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("gossip: cannot derive key: %w", err)
	}
	return k, nil
}

// memberlistConfig builds memberlist's configuration for c.
func (c *Config) memberlistConfig(t timings) (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.NodeName
	mc.BindAddr = c.BindAddr.String()
	mc.AdvertiseAddr = c.BindAddr.String()
	port := max(c.Port, 0)
	mc.BindPort, mc.AdvertisePort = port, port
	mc.ProbeInterval = t.probeInterval
	mc.ProbeTimeout = t.probeTimeout
	mc.SuspicionMult = 4
	mc.SuspicionMaxTimeoutMult = 2
	mc.AwarenessMaxMultiplier = 2
	mc.GossipInterval = t.gossipInterval
	mc.GossipToTheDeadTime = c.DeadAfter
	mc.PushPullInterval = t.pushPull
	mc.TCPTimeout = t.tcpTimeout
	// Names are unique by configuration, so a restarted daemon may come
	// back at another address as soon as its old life is declared dead.
	mc.DeadNodeReclaimTime = t.probeInterval
	if c.Secret != nil {
		k, err := deriveKey(c.Secret)
		if err != nil {
			return nil, err
		}
		mc.SecretKey = k
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	return mc, nil
}
