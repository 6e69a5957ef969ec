package api

import (
	"context"
	"net/http"
	"time"
)

// PublishSpec asks for a port to be published (POST /v1/publishes), as
// the config file's [[publish]] table: Network, Port and To ("NAME:PORT")
// are required; Proto defaults to "tcp", Mode to "ingress", Listen to the
// host's underlay address. The daemon checks it with the config rules.
type PublishSpec struct {
	Network string `json:"network"`
	Port    uint16 `json:"port"`
	Proto   string `json:"proto,omitempty"`
	To      string `json:"to"`
	Mode    string `json:"mode,omitempty"`
	Listen  string `json:"listen,omitempty"`
}

// PublishRef names a publish to remove (DELETE /v1/publishes): its
// protocol (default "tcp"), port and, when it has one, listen address.
type PublishRef struct {
	Proto  string `json:"proto,omitempty"`
	Port   uint16 `json:"port"`
	Listen string `json:"listen,omitempty"`
}

// Publish describes a published port as this host applies it
// (GET /v1/publishes).
type Publish struct {
	PublishSpec
	// Source is "config" or "api".
	Source string `json:"source"`
	// Address is where this host listens; empty when it does not.
	Address string `json:"address,omitempty"`
	// Error says why this host does not listen (a port in use, host
	// mode without a local endpoint, a network not carried here).
	Error string `json:"error,omitempty"`
	// Targets counts the endpoints new connections may go to from here.
	Targets int `json:"targets"`
	// Counters of this host: connections (UDP flows) accepted, open
	// now, refused at the bound, that reached no target, and relayed to
	// another host; bytes towards and from the targets.
	Accepted   uint64 `json:"accepted"`
	Active     int64  `json:"active"`
	Refused    uint64 `json:"refused"`
	DialErrors uint64 `json:"dial_errors"`
	Relayed    uint64 `json:"relayed"`
	BytesIn    uint64 `json:"bytes_in"`
	BytesOut   uint64 `json:"bytes_out"`
}

// Publisher is the part of a Backend that publishes ports. A Backend that
// implements it serves /v1/publishes; one that does not answers 404 there.
type Publisher interface {
	Publishes() []Publish
	// AddPublish publishes a port on every host (it replicates like API
	// networks). It fails with ErrConflict when the protocol and port are
	// published already or in use on this host, ErrInvalid for a bad spec
	// and ErrNotFound for an unknown network.
	AddPublish(ctx context.Context, spec PublishSpec) (Publish, error)
	// RemovePublish removes an API publish everywhere; ErrInvalid for one
	// of the config file, ErrNotFound when there is none.
	RemovePublish(ctx context.Context, ref PublishRef) error
}

func (s *server) routePublishes(route func(string, time.Duration, func(http.ResponseWriter, *http.Request) error)) {
	p, ok := s.b.(Publisher)
	if !ok {
		return
	}
	route("GET /v1/publishes", ReadTimeout, func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, s.l, http.StatusOK, nonNil(p.Publishes()))
		return nil
	})
	route("POST /v1/publishes", ChangeTimeout, func(w http.ResponseWriter, r *http.Request) error {
		var spec PublishSpec
		if err := decodeRequest(w, r, &spec); err != nil {
			return err
		}
		out, err := p.AddPublish(r.Context(), spec)
		if err != nil {
			return err
		}
		writeJSON(w, s.l, http.StatusCreated, out)
		return nil
	})
	route("DELETE /v1/publishes", ChangeTimeout, func(w http.ResponseWriter, r *http.Request) error {
		var ref PublishRef
		if err := decodeRequest(w, r, &ref); err != nil {
			return err
		}
		if err := p.RemovePublish(r.Context(), ref); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// Publishes lists the published ports as the daemon applies them.
func (c *Client) Publishes(ctx context.Context) ([]Publish, error) {
	var ps []Publish
	err := c.do(ctx, http.MethodGet, "/v1/publishes", nil, &ps)
	return ps, err
}

// AddPublish publishes a port on every host.
func (c *Client) AddPublish(ctx context.Context, spec PublishSpec) (Publish, error) {
	var p Publish
	err := c.do(ctx, http.MethodPost, "/v1/publishes", spec, &p)
	return p, err
}

// RemovePublish removes a published port everywhere.
func (c *Client) RemovePublish(ctx context.Context, ref PublishRef) error {
	return c.do(ctx, http.MethodDelete, "/v1/publishes", ref, nil)
}
