package api

import (
	"context"
	"net/http"
	"time"
)

// ServiceSpec declares a service (POST /v1/services), as the config
// file's [[service]] table; VIP nil means true.
type ServiceSpec struct {
	Network string `json:"network"`
	Name    string `json:"name"`
	VIP     *bool  `json:"vip,omitempty"`
}

// ServiceRef names a service to remove (DELETE /v1/services).
type ServiceRef struct {
	Network string `json:"network"`
	Name    string `json:"name"`
}

// Service describes a service as this host applies it (GET /v1/services).
type Service struct {
	Network string `json:"network"`
	Name    string `json:"name"`
	VIP     bool   `json:"vip"`
	// Address is the virtual IP this host's containers reach the service
	// at (what its DNS answers for Name); empty without VIP or when this
	// host has none yet.
	Address string `json:"address,omitempty"`
	// Source is "config" or "api".
	Source string `json:"source"`
	// Endpoints counts the live endpoints of the service, on every host.
	Endpoints int `json:"endpoints"`
	// Error says why this host gives the service no virtual IP.
	Error string `json:"error,omitempty"`
}

// Servicer is the part of a Backend that declares services. A Backend
// that implements it serves /v1/services.
type Servicer interface {
	Services() []Service
	// AddService declares a service on every host (it replicates like
	// API networks). ErrConflict when it exists, ErrInvalid for a bad
	// spec, ErrNotFound for an unknown network.
	AddService(ctx context.Context, spec ServiceSpec) (Service, error)
	// RemoveService removes an API service everywhere; ErrInvalid for one
	// of the config file, ErrNotFound when there is none.
	RemoveService(ctx context.Context, ref ServiceRef) error
}

func (s *server) routeServices(route func(string, time.Duration, func(http.ResponseWriter, *http.Request) error)) {
	sv, ok := s.b.(Servicer)
	if !ok {
		return
	}
	route("GET /v1/services", ReadTimeout, func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, s.l, http.StatusOK, nonNil(sv.Services()))
		return nil
	})
	route("POST /v1/services", ChangeTimeout, func(w http.ResponseWriter, r *http.Request) error {
		var spec ServiceSpec
		if err := decodeRequest(w, r, &spec); err != nil {
			return err
		}
		out, err := sv.AddService(r.Context(), spec)
		if err != nil {
			return err
		}
		writeJSON(w, s.l, http.StatusCreated, out)
		return nil
	})
	route("DELETE /v1/services", ChangeTimeout, func(w http.ResponseWriter, r *http.Request) error {
		var ref ServiceRef
		if err := decodeRequest(w, r, &ref); err != nil {
			return err
		}
		if err := sv.RemoveService(r.Context(), ref); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// Services lists the services as the daemon applies them.
func (c *Client) Services(ctx context.Context) ([]Service, error) {
	var ss []Service
	err := c.do(ctx, http.MethodGet, "/v1/services", nil, &ss)
	return ss, err
}

// AddService declares a service on every host.
func (c *Client) AddService(ctx context.Context, spec ServiceSpec) (Service, error) {
	var s Service
	err := c.do(ctx, http.MethodPost, "/v1/services", spec, &s)
	return s, err
}

// RemoveService removes a service everywhere.
func (c *Client) RemoveService(ctx context.Context, ref ServiceRef) error {
	return c.do(ctx, http.MethodDelete, "/v1/services", ref, nil)
}
