// Package registry is mortar's service registry and discovery: instances
// register under a lease and heartbeat; the node evicts them when the lease
// lapses and runs optional active health checks; clients list and watch
// instances, keep a cache that serves while the control plane is
// unreachable, and pick instances with a balancer.
package registry
