package tunnel

// The control plane's half of path MTU discovery: it reads each peer's
// path MTU from the kernel and hands it to the switch through peer.pmtu
// and peer.probe, which switch_mtu.go reads per frame (its comment lays
// out the whole flow).

import "time"

// DefaultPathMTUCheck is how often the engine reads every peer's path MTU
// from the kernel.
const DefaultPathMTUCheck = time.Second

// routinePathMTU reads every peer's path MTU from the kernel every
// PathMTUCheck, until the engine stops. A peer whose path cannot be read
// gets 0 (unknown), which leaves its frames alone.
func (e *Engine) routinePathMTU() {
	t := time.NewTicker(e.opts.PathMTUCheck)
	defer t.Stop()
	for {
		e.checkPathMTU()
		select {
		case <-e.done:
			return
		case <-t.C:
		}
	}
}

// checkPathMTU reads the path MTU of the peers of the current snapshot
// once, logging changes.
func (e *Engine) checkPathMTU() {
	for _, r := range e.sw.snap.Load().peers {
		mtu, err := e.opts.PathMTU(r.addr)
		if err != nil {
			mtu = 0
		}
		if old := r.pmtu.Swap(int32(mtu)); old != int32(mtu) && old != 0 {
			e.l.Info("path mtu changed", "peer", r.name, "from", old, "to", mtu)
		}
		r.probe.Store(true)
	}
}
