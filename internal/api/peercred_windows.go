package api

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/windows"
)

// peerCred cannot ask Windows who is at the other end of a unix socket:
// AF_UNIX there has no peer credentials. restrictSocket gave the socket
// file a protected DACL that lets only the daemon's user open it, and
// connecting needs that access, so the caller is the daemon's user.
func peerCred(net.Conn) (*Cred, error) {
	return &Cred{UID: uint32(os.Geteuid())}, nil
}

// restrictSocket replaces the socket file's DACL with one that grants
// access to the daemon's user alone, not inherited from the directory.
// host.api_group has no meaning here, and config validation refuses it.
func restrictSocket(path string) error {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return fmt.Errorf("cannot read the daemon's user: %w", err)
	}
	sd, err := windows.SecurityDescriptorFromString("D:P(A;;GA;;;" + u.User.Sid.String() + ")")
	if err != nil {
		return err
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return err
	}
	return windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
}
