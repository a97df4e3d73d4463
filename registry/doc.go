// Package registry is the SDK of mortar's service registry: instances
// register under a lease and heartbeat; the node evicts them when the lease
// lapses and runs optional active health checks; clients list and watch
// instances, keep answering while the control plane is unreachable, and
// pick instances with a balancer. docs/registry.md in the repository
// describes the model, the node's side and the layout on the engine.
//
// # Instances
//
// An [Instance] is named by Service and ID and tells clients its Address,
// Port and Protocol, with optional Version, Zone, Weight, Metadata and
// Tags. Its TTL is the lease: without a heartbeat for that long the
// instance is evicted; a TTL of 0 means no lease, and the instance stays
// until it is deregistered. An optional [Check] makes the owning node probe
// the instance (tcp, http or rpc) and set its Status: passing, warning or
// critical. [Instance.Normalize] checks an instance against the limits
// (MaxTTL, MaxMetadata, …) and fills its defaults.
//
// # Registering
//
// [Client.Register] registers an instance and returns a [Registration]
// that heartbeats every third of the TTL over core NATS, registers the
// instance again if the registry removed it or the connection came back,
// and deregisters it on [Registration.Stop]. [Client.RegisterOnce] writes
// it once, for instances without a lease or callers that keep the lease
// with [Client.Renew]. An rpc.Server with ServerConfig.Registry set
// registers itself this way for each listener.
//
// Heartbeats are not written to the replicated store: an instance is
// written when it registers, when its status or owning node changes, and
// when it is removed.
//
// # Discovery
//
// [Client.List] returns a service's instances and, while no node can be
// reached, the last list it got. [Client.Watch] returns a [Watcher] whose
// [Watcher.Next] yields one put per current instance, then every change;
// it detects lost change notices from revision gaps and re-reads the
// service then, after a reconnect and every [Config].ResyncInterval.
// [Client.Resolve] keeps a live view of a service in a [Resolver], whose
// [Resolver.Pick] chooses an instance fit to serve with a [Balancer]:
// [RoundRobin], [WeightedRandom], [LeastInFlight], [P2C], [ConsistentHash]
// or [ZoneAffinity]. rpc.Dial with a "mortar://NAME" endpoint does this
// per call, with failover.
//
//	conn, err := mortar.Dial(ctx, mortar.DefaultURL, nil)
//	reg, err := registry.New(conn, nil)
//
//	r, err := reg.Register(ctx, registry.Instance{
//		Service: "billing", ID: "b-1", Address: "10.0.0.6", Port: 8080,
//		Protocol: "http", TTL: 15 * time.Second,
//	})
//	defer r.Stop(ctx)
//
//	res, err := reg.Resolve(ctx, "billing", &registry.ResolverConfig{Balancer: registry.P2C()})
//	defer res.Close()
//	in, done, err := res.Pick("") // ErrNoInstances if none is fit to serve
//	start := time.Now()
//	resp, err := http.Get(in.Endpoint() + "/invoices")
//	done(time.Since(start), err)
package registry
