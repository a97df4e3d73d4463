package rpc

import (
	"fmt"
	"net"
	"strings"
)

// splitEndpoint turns a zerorpc endpoint into a network and address:
// "tcp://host:port" and plain "host:port" are TCP, "ipc:///path" is a Unix
// socket.
func splitEndpoint(endpoint string) (network, address string, err error) {
	scheme, rest, found := strings.Cut(endpoint, "://")
	if !found {
		scheme, rest = "tcp", endpoint
	}
	switch scheme {
	case "tcp":
		if _, _, err := net.SplitHostPort(rest); err != nil {
			return "", "", fmt.Errorf("rpc: endpoint %q: %w", endpoint, err)
		}
		return "tcp", rest, nil
	case "ipc":
		if rest == "" {
			return "", "", fmt.Errorf("rpc: endpoint %q: empty path", endpoint)
		}
		return "unix", rest, nil
	}
	return "", "", fmt.Errorf("rpc: endpoint %q: unsupported transport %q (want tcp:// or ipc://)", endpoint, scheme)
}

// Listen listens on a zerorpc endpoint: "tcp://host:port", "host:port" or
// "ipc:///path". Port 0 picks a free port; the listener's Addr tells which.
func Listen(endpoint string) (net.Listener, error) {
	network, address, err := splitEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("rpc: listen: %w", err)
	}
	return l, nil
}

// Endpoint formats a listener's address as a zerorpc endpoint.
func Endpoint(addr net.Addr) string {
	if addr.Network() == "unix" {
		return "ipc://" + addr.String()
	}
	return "tcp://" + addr.String()
}
