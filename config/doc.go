// Package config is the SDK of mortar's configuration center: versioned
// values pushed to watchers, with history, diff, rollback,
// compare-and-set and gray release.
//
// # Model
//
// A value lives at namespace / group / key. The namespace "default"
// always exists; others are made with [Client.CreateNamespace]. Groups
// and namespaces are 1 to 64 of [A-Za-z0-9_-]; a key is any UTF-8 up to
// 256 bytes. A value is at most 1 MiB ([MaxValueBytes]) and has a content
// type (text, json, yaml, toml, properties); json, yaml and toml values
// must parse.
//
// # Versions
//
// Every write ([Client.Set], [Client.Delete], [Client.Rollback],
// [Client.Promote]) stores a new version numbered 1, 2, … per key with its
// author, time and comment. History is unlimited: [Client.History] pages
// through it and [Client.GetVersion] reads any version. [Client.Diff]
// shows a unified diff between two. A write with
// [SetOpts].ExpectedVersion is a compare-and-set; a lost race is
// [ErrConflict] and stores nothing.
//
//	c, _ := config.New(conn, &config.Config{Author: "deploy-bot"})
//	v, err := c.Set(ctx, "billing", "limits.json", []byte(`{"max":100}`),
//		&config.SetOpts{ContentType: config.TypeJSON, ExpectedVersion: config.Expect(0)})
//
// # Watching
//
// [Client.Watch] returns a [Watcher] whose [Watcher.Next] yields the
// current value, then each change in order. Changes come from the node's
// stream over core NATS; a lost notice is detected from sequence gaps,
// and the watcher re-reads the key then, on reconnect, and every
// [Config].ResyncInterval, so it always converges on the latest value.
//
// # Gray release
//
// [Client.SetGray] gives a key a second value seen only by instances
// whose [Config].Labels match a [Rule]'s selector or whose
// [Config].Address is in its list. [Client.Get], [Client.Watch] and
// [Bind] resolve it for this client. [Client.Promote] makes it the next
// version for everyone (atomically with ending the release);
// [Client.Abandon] drops it.
//
// # Binding a key to a struct
//
// [Bind] decodes a key (JSON, YAML or TOML) into a T and keeps it current:
// [Binding.Get] returns the last good value; a new value that fails to
// decode or to pass [BindOpts].Validate is reported to OnError and the
// last good value is kept. [Binding.Stop] waits for its goroutine.
//
//	b, err := config.Bind(ctx, c, "billing", "limits.json", &config.BindOpts[Limits]{
//		OnChange: func(old, new Limits) { log.Printf("limits %v -> %v", old, new) },
//	})
//	defer b.Stop()
//	limit := b.Get().Max
package config
