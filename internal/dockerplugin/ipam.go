package dockerplugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vxwire/vxwire/internal/config"
)

// requestPool accepts the subnet given with --subnet; vxwire does not pick
// subnets, since every host must agree on one.
func (p *Plugin) requestPool(_ context.Context, body []byte) (any, error) {
	var req requestPoolRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	switch {
	case req.V6:
		return nil, errors.New("IPv6 pools: vxwire networks carry IPv4 only")
	case req.Pool == "":
		return nil, errors.New("give the network's subnet with --subnet: every host must create it with the same one")
	case req.SubPool != "":
		return nil, errors.New("--ip-range is not supported: vxwire allocates from the whole subnet")
	}
	pool, err := config.ParseSubnet(req.Pool)
	if err != nil {
		return nil, fmt.Errorf("--subnet: %v", err)
	}
	return requestPoolResponse{PoolID: pool.String(), Pool: pool.String(), Data: map[string]string{}}, nil
}

func (p *Plugin) releasePool(_ context.Context, body []byte) (any, error) {
	var req releasePoolRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// requestAddress answers the gateway request of network create with the
// gateway itself (the daemon serves it), and every other request with an
// address reserved in the vxwire network, unique across hosts.
func (p *Plugin) requestAddress(ctx context.Context, body []byte) (any, error) {
	var req requestAddressRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	pool, err := netip.ParsePrefix(req.PoolID)
	if err != nil {
		return nil, fmt.Errorf("pool %q was not handed out by vxwire", req.PoolID)
	}
	var want netip.Addr
	if req.Address != "" {
		if want, err = netip.ParseAddr(req.Address); err != nil || !pool.Contains(want) {
			return nil, fmt.Errorf("address %q is not in subnet %s", req.Address, pool)
		}
	}
	if req.Options[optAddressType] == gatewayType {
		if !want.IsValid() {
			want = pool.Addr().Next()
		}
		if err := config.CheckGateway(want, pool); err != nil {
			return nil, fmt.Errorf("--gateway: %v", err)
		}
		return requestAddressResponse{Address: netip.PrefixFrom(want, pool.Bits()).String(), Data: map[string]string{}}, nil
	}
	n := p.networkByPool(pool)
	if n == nil {
		return nil, fmt.Errorf("no vxwire network of this host has subnet %s", pool)
	}
	name, err := p.ensureNetwork(ctx, p.docker(ctx), n)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.seq++
	key := fmt.Sprintf("%s%s-%d", reservationPrefix, p.epoch, p.seq)
	p.mu.Unlock()
	a, err := p.rt.ReserveAddress(ctx, name, key, want)
	if err != nil {
		return nil, fmt.Errorf("no address on network %q: %w", name, err)
	}
	p.mu.Lock()
	p.reserved[a] = key
	p.unlockedSave()
	p.mu.Unlock()
	return requestAddressResponse{Address: netip.PrefixFrom(a, pool.Bits()).String(), Data: map[string]string{}}, nil
}

// reservationPrefix starts the key of every address the IPAM driver
// reserves.
const reservationPrefix = "docker-ipam-"

// releaseAddress gives back a reservation that no endpoint took (an
// endpoint's address is released when it detaches).
func (p *Plugin) releaseAddress(_ context.Context, body []byte) (any, error) {
	var req releaseAddressRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	a, err := netip.ParseAddr(req.Address)
	if err != nil {
		return nil, fmt.Errorf("address %q: %v", req.Address, err)
	}
	pool, _ := netip.ParsePrefix(req.PoolID)
	p.mu.Lock()
	key, ok := p.reserved[a]
	delete(p.reserved, a)
	if ok {
		p.unlockedSave()
	}
	n := p.unlockedNetworkByPool(pool)
	p.mu.Unlock()
	if ok && n != nil && n.name != "" {
		if err := p.rt.ReleaseReservation(n.name, key); err != nil {
			return nil, err
		}
	}
	return struct{}{}, nil
}

// networkByPool returns the Docker network of subnet pool.
func (p *Plugin) networkByPool(pool netip.Prefix) *dockerNet {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unlockedNetworkByPool(pool)
}

func (p *Plugin) unlockedNetworkByPool(pool netip.Prefix) *dockerNet {
	for _, n := range p.nets {
		if n.subnet == pool {
			return n
		}
	}
	return nil
}
