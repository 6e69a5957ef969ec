package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// errNoFDPassing is why a TAP cannot come with a request here: Windows
// unix sockets carry no descriptors, and there are no TAP devices.
var errNoFDPassing = errors.New("passing a TAP descriptor (SCM_RIGHTS) needs Linux; on windows, use a host endpoint, SOCKS5 or [[forward]]")

// fdQueue holds nothing on Windows: no descriptor arrives with a request.
type fdQueue struct{}

func (fdQueue) close() {}

// Close closes the connection.
func (cc *credConn) Close() error {
	cc.fds.close()
	return cc.Conn.Close()
}

// withPassedTAP reports that no descriptor can come with r.
func withPassedTAP(*http.Request) (context.Context, *tapHolder, error) {
	return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, errNoFDPassing)
}

// tapHolder is never filled on Windows.
type tapHolder struct{}

func (*tapHolder) release() {}

// TakeTAP returns nil: no TAP comes with a request on Windows.
func TakeTAP(context.Context) *os.File { return nil }

// AttachTAP refuses: a TAP cannot be sent to the daemon on Windows.
func (c *Client) AttachTAP(context.Context, AttachRequest, *os.File) (Endpoint, error) {
	return Endpoint{}, errNoFDPassing
}
