module github.com/vxwire/vxwire

go 1.26.0

require (
	github.com/containernetworking/plugins v1.9.1
	github.com/pelletier/go-toml/v2 v2.4.3
	golang.org/x/sys v0.49.0
)

require (
	github.com/vishvananda/netlink v1.3.1 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	go.uber.org/goleak v1.3.0 // indirect
)
