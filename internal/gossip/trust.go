package gossip

import (
	"fmt"
	"time"

	"github.com/vxwire/vxwire/internal/config"
)

// Bounds on what a peer may make this host hold. Every host's state is
// kept in full, so without them one member (or anyone holding the secret)
// could grow every other host's memory without end.
const (
	// MaxHosts bounds the hosts whose states are kept, this one included.
	MaxHosts = 1024
	// MaxRecordsPerHost bounds the records, and separately the
	// reservations, of one host's state.
	MaxRecordsPerHost = 16384
	// maxClockSkew is how far ahead of this host's clock a state's epoch
	// (its sender's start time) may lie.
	maxClockSkew = 10 * time.Minute
	// maxCounter bounds version counters and network clocks, so that no
	// received value can bring either close to wrapping around.
	maxCounter = 1 << 62
)

// refusal is an error that names the counter it is refused under.
type refusal struct {
	reason string
	err    error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func refuse(reason, format string, args ...any) *refusal {
	return &refusal{reason: reason, err: fmt.Errorf(format, args...)}
}

// validRecord checks one endpoint record with the config rules; the
// address is checked against its network's subnet where the network is
// known (by the daemon, which knows the config file's networks too).
func validRecord(r *Record) error {
	if err := config.CheckLabel(r.Network); err != nil {
		return fmt.Errorf("record %q: network: %v", r.Name, err)
	}
	if err := config.CheckRecord(nil, r.Name, r.Aliases, r.IP, r.MAC[:]); err != nil {
		return fmt.Errorf("record of network %s: %v", r.Network, err)
	}
	return nil
}

// checkVersion refuses a version from the far future or near wrapping.
func checkVersion(host string, v version, now time.Time) error {
	if v.Counter >= maxCounter {
		return refuse(RefusedVersion, "state of %s: counter %d would wrap around", host, v.Counter)
	}
	if limit := uint64(now.Add(maxClockSkew).UnixNano()); v.Epoch > limit {
		return refuse(RefusedVersion, "state of %s: epoch %d lies more than %v in the future", host, v.Epoch, maxClockSkew)
	}
	return nil
}

// checkHeader checks the host name and version of a state or notice.
func checkHeader(s *hostState, now time.Time) error {
	if err := config.CheckHostName(s.Host); err != nil {
		return refuse(RefusedHost, "state of host %q: %v", s.Host, err)
	}
	return checkVersion(s.Host, s.Version, now)
}

// unlockedCheckNotice checks a notice received from a peer, which only
// names a host and its version: like a state's, and the host must be in
// the table or a member, since only then can it be pulled. Otherwise
// invented names would each be queued and gossiped on to every host.
// mu must be held.
func (c *Cluster) unlockedCheckNotice(s *hostState, now time.Time) error {
	if err := checkHeader(s, now); err != nil {
		return err
	}
	if _, known := c.tab.hosts[s.Host]; !known && !c.tab.live[s.Host] {
		return refuse(RefusedUnknownHost, "notice of %s, which is neither known nor a member", s.Host)
	}
	return nil
}

// unlockedCheckState checks a state received from a peer: host name,
// version, bounds and every record. mu must be held.
func (c *Cluster) unlockedCheckState(s *hostState, now time.Time) error {
	if err := checkHeader(s, now); err != nil {
		return err
	}
	if _, known := c.tab.hosts[s.Host]; !known && len(c.tab.hosts) >= MaxHosts {
		return refuse(RefusedHostCap, "state of %s: already %d hosts known", s.Host, len(c.tab.hosts))
	}
	if len(s.Records) > MaxRecordsPerHost || len(s.Reservations) > MaxRecordsPerHost {
		return refuse(RefusedRecordCap, "state of %s: %d records and %d reservations; at most %d each",
			s.Host, len(s.Records), len(s.Reservations), MaxRecordsPerHost)
	}
	if len(s.Networks) > MaxRecordsPerHost {
		return refuse(RefusedRecordCap, "state of %s: %d networks; at most %d", s.Host, len(s.Networks), MaxRecordsPerHost)
	}
	for i := range s.Networks {
		if err := checkHostNetwork(&s.Networks[i]); err != nil {
			return refuse(RefusedNetwork, "state of %s: network %q: %v", s.Host, s.Networks[i].Name, err)
		}
	}
	for i := range s.Records {
		r := &s.Records[i]
		if r.Host != s.Host {
			return refuse(RefusedRecord, "state of %s holds a record of host %q", s.Host, r.Host)
		}
		if err := validRecord(r); err != nil {
			return refuse(RefusedRecord, "state of %s: %v", s.Host, err)
		}
	}
	return nil
}

// count counts err under its refusal reason, or under def when it has
// none, and logs it at Debug.
func (c *Cluster) count(err error, def string) {
	reason := def
	if r, ok := err.(*refusal); ok {
		reason = r.reason
	}
	c.refused.Add(reason)
	c.l.Debug("gossip input refused", "reason", reason, "error", err)
}
