// Package config is the SDK of mortar's configuration center.
package config
