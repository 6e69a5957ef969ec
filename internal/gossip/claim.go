package gossip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// ErrNoQuorum is returned (wrapped) by Claim when this host sees too few
// of the hosts it knows to rule out a partition.
var ErrNoQuorum = errors.New("gossip: no quorum")

// ErrUnanswered is returned (wrapped) by Claim when a live member did not
// answer in time.
var ErrUnanswered = errors.New("gossip: claim not answered")

// ConflictError is returned by Claim when another host holds the address,
// or is claiming it right now (Pending).
type ConflictError struct {
	// Network and IP name the address claimed.
	Network string
	IP      netip.Addr
	// Host and Endpoint name the holder.
	Host     string
	Endpoint string
	// Pending is true when the holder has a claim in progress rather than
	// a record or reservation: retrying later may succeed.
	Pending bool
}

// Error implements error.
func (e *ConflictError) Error() string {
	if e.Pending {
		return fmt.Sprintf("address %s of network %s is being claimed by %s on %s", e.IP, e.Network, e.Endpoint, e.Host)
	}
	return fmt.Sprintf("address %s of network %s is in use by %s on %s", e.IP, e.Network, e.Endpoint, e.Host)
}

// Holder returns the endpoint and host that hold the address.
func (e *ConflictError) Holder() (endpoint, host string) { return e.Endpoint, e.Host }

// Transient reports whether the conflict is a claim in progress.
func (e *ConflictError) Transient() bool { return e.Pending }

// promise is a member's grant of an address to one holder.
type promise struct {
	owner   owner
	expires time.Time
}

// Claim reserves ip of network for endpoint of this host across the
// cluster. It succeeds only if this host and every live member grant it;
// each member grants an address to at most one host at a time. On success
// the reservation travels with this host's state until Unclaim or Close.
// Claiming an address this host already holds succeeds again.
//
// It fails with *ConflictError if some member knows another holder, with
// ErrNoQuorum if this host might be on the minority side of a partition,
// and with ErrUnanswered if a member does not answer before ctx ends or
// ClaimTimeout passes. Claim waits for the first attempt to join the seeds,
// so a starting host does not decide alone.
func (c *Cluster) Claim(ctx context.Context, network string, ip netip.Addr, endpoint string) error {
	if network == "" || len(network) > maxString || endpoint == "" || len(endpoint) > maxString || !ip.IsValid() {
		return fmt.Errorf("gossip: invalid claim of %s in %q for %q", ip, network, endpoint)
	}
	select {
	case <-c.joined:
	case <-c.done:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("gossip: claim of %s in %s: %w", ip, network, ctx.Err())
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ClaimTimeout)
	defer cancel()

	req, targets, ch, err := c.startClaim(network, ip, endpoint)
	if err != nil {
		return err
	}
	defer func() {
		c.mu.Lock()
		delete(c.pending, req.ID)
		c.mu.Unlock()
	}()
	granted, err := c.collect(ctx, req, targets, ch)
	if err == nil {
		c.finishClaim(req)
		return nil
	}
	c.releaseClaim(req, granted)
	return err
}

// startClaim checks the quorum, grants the claim locally and sends it to
// every other live member.
func (c *Cluster) startClaim(network string, ip netip.Addr, endpoint string) (claimMsg, []string, chan answerMsg, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return claimMsg{}, nil, nil, ErrClosed
	}
	if !c.tab.quorum() {
		return claimMsg{}, nil, nil, fmt.Errorf("claim of %s in %s: %d of %d known hosts reachable: %w",
			ip, network, len(c.tab.live), len(c.tab.live)+len(c.tab.failed), ErrNoQuorum)
	}
	c.nextID++
	req := claimMsg{ID: c.nextID, From: c.cfg.NodeName, Network: network, IP: ip, Endpoint: endpoint}
	if a := c.unlockedDecide(req, time.Now()); !a.Granted {
		return req, nil, nil, conflict(req, &a)
	}
	var targets []string
	for h := range c.tab.live {
		if h != c.cfg.NodeName {
			targets = append(targets, h)
		}
	}
	slices.Sort(targets)
	ch := make(chan answerMsg, len(targets))
	c.pending[req.ID] = ch
	msg := encode(nil, &message{Type: msgClaim, Claim: req})
	for _, h := range targets {
		c.unlockedSend(h, msg, func(error) {
			select {
			case ch <- answerMsg{ID: req.ID, From: h}:
			default:
			}
		})
	}
	return req, targets, ch, nil
}

// collect waits for every target's answer and returns who granted. A
// refusal or a missing answer makes it fail.
func (c *Cluster) collect(ctx context.Context, req claimMsg, targets []string, ch chan answerMsg) ([]string, error) {
	var granted []string
	waiting := make(map[string]bool, len(targets))
	for _, h := range targets {
		waiting[h] = true
	}
	var refusal error
	for len(waiting) > 0 {
		select {
		case a := <-ch:
			if !waiting[a.From] {
				continue
			}
			delete(waiting, a.From)
			switch {
			case a.Granted:
				granted = append(granted, a.From)
			case a.HolderHost != "":
				// A holder beats a pending claimant beats an
				// unreachable member: report the most final reason.
				var prev *ConflictError
				if !errors.As(refusal, &prev) || (prev.Pending && !a.Pending) {
					refusal = conflict(req, &a)
				}
			case refusal == nil:
				refusal = fmt.Errorf("claim of %s in %s: %s unreachable: %w", req.IP, req.Network, a.From, ErrUnanswered)
			}
		case <-ctx.Done():
			missing := slices.Sorted(func(yield func(string) bool) {
				for h := range waiting {
					if !yield(h) {
						return
					}
				}
			})
			return granted, fmt.Errorf("claim of %s in %s: no answer from %v: %w", req.IP, req.Network, missing, ErrUnanswered)
		case <-c.done:
			return granted, ErrClosed
		}
	}
	return granted, refusal
}

func conflict(req claimMsg, a *answerMsg) error {
	return &ConflictError{Network: req.Network, IP: req.IP, Host: a.HolderHost, Endpoint: a.HolderEndpoint, Pending: a.Pending}
}

// finishClaim records the reservation in this host's state.
func (c *Cluster) finishClaim(req claimMsg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := addrKey{req.Network, req.IP}
	delete(c.promises, k)
	res := reservation{Network: req.Network, IP: req.IP, Endpoint: req.Endpoint}
	i := slices.IndexFunc(c.local.Reservations, func(r reservation) bool { return r.Network == req.Network && r.IP == req.IP })
	if i >= 0 && c.local.Reservations[i] == res {
		return
	}
	rs := slices.Clone(c.local.Reservations)
	if i >= 0 {
		rs[i] = res
	} else {
		rs = append(rs, res)
	}
	c.local.Reservations = rs
	c.unlockedPublish()
}

// releaseClaim withdraws the grants of a failed claim so that a competing
// claimant does not have to wait for them to expire.
func (c *Cluster) releaseClaim(req claimMsg, granted []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unlockedRelease(req)
	msg := encode(nil, &message{Type: msgRelease, Claim: req})
	for _, h := range granted {
		c.unlockedSend(h, msg, nil)
	}
}

// Unclaim drops this host's reservation of ip in network for endpoint.
// Other hosts may claim the address once they learn of it.
func (c *Cluster) Unclaim(network string, ip netip.Addr, endpoint string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := addrKey{network, ip}
	if p, ok := c.promises[k]; ok && p.owner == (owner{c.cfg.NodeName, endpoint}) {
		delete(c.promises, k)
	}
	rs := slices.DeleteFunc(slices.Clone(c.local.Reservations), func(r reservation) bool {
		return r.Network == network && r.IP == ip && r.Endpoint == endpoint
	})
	if c.closed {
		return
	}
	// Withdraw promises peers may still hold from a repeated claim; they
	// would otherwise outlive the reservation until they expire.
	msg := encode(nil, &message{Type: msgRelease, Claim: claimMsg{From: c.cfg.NodeName, Network: network, IP: ip, Endpoint: endpoint}})
	for h := range c.tab.live {
		if h != c.cfg.NodeName {
			c.unlockedSend(h, msg, nil)
		}
	}
	if len(rs) != len(c.local.Reservations) {
		c.local.Reservations = rs
		c.unlockedPublish()
	}
}

// Lookup returns the endpoint and host holding ip in network, from the
// records and reservations known here.
func (c *Cluster) Lookup(network string, ip netip.Addr) (endpoint, host string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.tab.lookup(addrKey{network, ip})
	return o.Endpoint, o.Host, ok
}

// unlockedDecide answers a claim: refused if another host holds the
// address or has an unexpired promise for it, otherwise granted and
// promised to the claimant. mu must be held.
func (c *Cluster) unlockedDecide(req claimMsg, now time.Time) answerMsg {
	a := answerMsg{ID: req.ID, From: c.cfg.NodeName}
	k := addrKey{req.Network, req.IP}
	if o, ok := c.tab.lookup(k); ok && o.Host != req.From {
		a.HolderHost, a.HolderEndpoint = o.Host, o.Endpoint
		return a
	}
	if p, ok := c.promises[k]; ok && now.Before(p.expires) && p.owner.Host != req.From {
		a.HolderHost, a.HolderEndpoint, a.Pending = p.owner.Host, p.owner.Endpoint, true
		return a
	}
	c.promises[k] = promise{owner: owner{req.From, req.Endpoint}, expires: now.Add(c.cfg.PromiseTTL)}
	a.Granted = true
	return a
}

// unlockedRelease withdraws a promise made to req's claimant. mu must be
// held.
func (c *Cluster) unlockedRelease(req claimMsg) {
	k := addrKey{req.Network, req.IP}
	if p, ok := c.promises[k]; ok && p.owner == (owner{req.From, req.Endpoint}) {
		delete(c.promises, k)
	}
}

// unlockedExpirePromises drops expired promises and those whose holder's
// reservation or record has arrived. mu must be held.
func (c *Cluster) unlockedExpirePromises(now time.Time) {
	for k, p := range c.promises {
		if o, ok := c.tab.lookup(k); !now.Before(p.expires) || (ok && o.Host == p.owner.Host) {
			delete(c.promises, k)
		}
	}
}
