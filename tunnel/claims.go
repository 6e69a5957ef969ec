package tunnel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/consensus"
)

// Endpoint names are unique within their network across the cluster
// (config.CheckNameClaim); aliases are shared. Every endpoint this host
// attaches, from the file, the API, the hook, CNI or Docker, claims its
// name in unlockedApply before it gets an address:
//
//   - against the other hosts' gossip records, always;
//   - with a log (e.blocks), as a committed entry: the log refuses a name
//     another host holds, so of two hosts racing for one name exactly one
//     wins. An endpoint that goes releases its claim; so does a network
//     removed from the log, for all of its names.
//
// A host that knows no leader (alone at start, or on the small side of a
// partition) decides from the log as it last applied it, attaches, and
// commits the claim in the background, as it does for explicit addresses
// (internal/ipam): the overlay keeps working on both sides of a split.
// An endpoint whose name the log gives to another host meanwhile is taken
// down once this host learns it, and listed as failed naming the holder
// (unlockedNameLost): after a split heals, one holder remains. A
// host that knows a leader commits the claim first, waiting up to
// claimWait: a name the log gives to another host is refused; a claim
// the log cannot commit in that time (a cut the host has not noticed
// yet) is honoured as above, so that the two sides of a partition keep
// attaching, whichever moment the cut began. Without a log the gossip
// check is all there is.

// Bounds of claims: how long an attach waits for its claim to commit
// while a leader is known (about the log's heartbeat timeout: a cut that
// lasts longer leaves no leader known, and attaches stop waiting), one
// background attempt, and the pause between background attempts.
const (
	claimWait      = 2 * time.Second
	claimAttempt   = 10 * time.Second
	claimRetryWait = time.Second
	// sweepWait bounds how long the start-up sweep of stale claims waits
	// for a leader.
	sweepWait = 2 * time.Minute
)

// unlockedClaimName claims ep's name for this host, or returns why not: a
// *config.NameHeldError naming the holder. mu must be held.
func (e *Engine) unlockedClaimName(ep config.Endpoint) error {
	k := epKey{ep.Network, ep.Name}
	if _, ok := e.claims[k]; ok {
		return nil // held already, by a port being replaced
	}
	self := config.NameHolder{Network: ep.Network, Name: ep.Name, Host: e.file.Host.Name}
	if h := nameHolder(e.unlockedRecords(), self.Host, ep.Network, ep.Name); h != "" {
		return &config.NameHeldError{Held: config.NameHolder{Network: ep.Network, Name: ep.Name, Host: h}}
	}
	if e.blocks == nil {
		return nil
	}
	// This host's own claim (from before a restart, or of an endpoint
	// whose release may still be on its way) is replaced by a new one,
	// which a late release of the old one cannot drop.
	c, held := e.blocks.Claimed(ep.Network, ep.Name)
	held = held && c.Host != self.Host
	if !e.blocks.HasLeader() {
		if held {
			return config.CheckNameClaim(self, config.NameHolder{Network: c.Network, Name: c.Name, Host: c.Host})
		}
		id := consensus.NewClaimID()
		e.claims[k] = id
		e.claimLater(k, id)
		return nil
	}
	id := consensus.NewClaimID()
	ctx, cancel := context.WithTimeout(context.Background(), claimWait)
	err := e.blocks.Claim(ctx, ep.Network, ep.Name, id)
	cancel()
	var refused *config.NameHeldError
	if errors.As(err, &refused) {
		return err
	}
	e.claims[k] = id
	if err != nil {
		e.l.Warn("endpoint name honoured before the overlay could record its claim", "network", k.network, "endpoint", k.name, "error", err)
		e.claimLater(k, id)
	}
	return nil
}

// claimLater commits the claim id of k in the background until the log
// records or refuses it, or k lets the name go. mu must be held.
func (e *Engine) claimLater(k epKey, id uint64) {
	if e.stopped {
		return
	}
	e.goSafe("claim name", func() {
		for {
			e.mu.Lock()
			still := e.claims[k] == id && !e.stopped
			e.mu.Unlock()
			if !still {
				return
			}
			ctx, cancel := e.boundedContext(claimAttempt)
			err := e.blocks.Claim(ctx, k.network, k.name, id)
			cancel()
			var refused *config.NameHeldError
			switch {
			case err == nil:
				// The endpoint may have gone while the claim was on its
				// way: its release, committed first, matched no claim of
				// this ID, so the claim would outlive the endpoint.
				e.mu.Lock()
				gone := e.claims[k] != id && !e.stopped
				e.mu.Unlock()
				if gone {
					e.unclaim(k, id)
				}
				return
			case errors.Is(err, consensus.ErrClosed):
				return
			case errors.As(err, &refused):
				e.mu.Lock()
				if e.claims[k] == id && !e.stopped {
					e.unlockedNameLost(k, err)
				}
				e.mu.Unlock()
				return
			}
			select {
			case <-e.done:
				return
			case <-time.After(claimRetryWait):
			}
		}
	})
}

// unlockedNameLost takes down the endpoint k, attached while this host
// knew no leader, whose name the log gave to another host meanwhile (two
// sides of a partition attached one name): the name's holder keeps it.
// The endpoint is listed with err: an API endpoint among the failed ones
// of Status until it is detached, a config-file one as not attached until
// a reload tries it again. mu must be held.
func (e *Engine) unlockedNameLost(k epKey, err error) {
	delete(e.claims, k)
	e.l.Error("endpoint taken down: another host holds its name", "network", k.network, "endpoint", k.name, "error", err)
	if d, ok := e.dynEps[k]; ok {
		delete(e.dynEps, k)
		d.Failed = err.Error()
		e.failedEps[k] = d
		e.unlockedSaveEndpoint(k)
	} else if p := e.ports[k]; p != nil {
		e.unlockedClosePort(p)
		delete(e.ports, k)
		if err := e.alloc.Release(k.network, k.name); err != nil {
			e.l.Warn("cannot release address", "error", err, "network", k.network, "endpoint", k.name)
		}
		for i, ep := range e.file.Endpoints {
			if ep.Network == k.network && ep.Name == k.name {
				e.failedCfg[k] = e.file.Errorf(fmt.Sprintf("endpoint[%d]", i), "%v", err)
			}
		}
	}
	if _, err := e.unlockedApply(e.unlockedEffective(), true); err != nil {
		e.l.Warn("cannot apply after taking an endpoint down", "error", err)
	}
}

// unlockedReleaseName releases the claim of k, in the background: a port
// that goes gives its name back. mu must be held.
func (e *Engine) unlockedReleaseName(k epKey) {
	id, ok := e.claims[k]
	if !ok {
		return
	}
	delete(e.claims, k)
	if e.blocks == nil || e.stopped {
		return
	}
	e.goSafe("release name", func() { e.unclaim(k, id) })
}

func (e *Engine) unclaim(k epKey, id uint64) {
	ctx, cancel := e.boundedContext(claimAttempt)
	defer cancel()
	if err := e.blocks.Unclaim(ctx, k.network, k.name, id); err != nil {
		e.l.Warn("cannot release an endpoint name", "network", k.network, "endpoint", k.name, "error", err)
	}
}

// routineSweepNames releases, once a leader is known after start-up, the
// claims the log holds for this host that no endpoint of it holds: those
// of endpoints that went while the daemon was down. A claim made since
// carries another ID and is left alone.
func (e *Engine) routineSweepNames() {
	deadline := time.Now().Add(sweepWait)
	for !e.blocks.HasLeader() {
		if time.Now().After(deadline) {
			return
		}
		select {
		case <-e.done:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	var stale []consensus.Claim
	e.mu.Lock()
	for _, c := range e.blocks.Claims() {
		if c.Host == e.file.Host.Name && e.claims[epKey{c.Network, c.Name}] != c.ID {
			stale = append(stale, c)
		}
	}
	e.mu.Unlock()
	for _, c := range stale {
		e.l.Info("releasing the name of an endpoint gone while stopped", "network", c.Network, "endpoint", c.Name)
		e.unclaim(epKey{c.Network, c.Name}, c.ID)
	}
}

// boundedContext returns a context that ends after d or when the engine
// stops.
func (e *Engine) boundedContext(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	go func() {
		select {
		case <-e.done:
		case <-ctx.Done():
		}
		cancel()
	}()
	return ctx, cancel
}
