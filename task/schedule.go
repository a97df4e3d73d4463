package task

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Schedule sends a task again and again (Celery beat's entry): every
// interval, on a cron spec in a time zone, or once at a time. The node's
// engine fires it: in a cluster, exactly one node does, and a new one
// takes over if it dies, so a schedule never fires twice for one time.
// After downtime a schedule fires once for all the times it missed, then
// keeps its rhythm.
//
// Each run is a task with the ID <name>-<n>, n growing.
type Schedule struct {
	Name string `json:"name"` // 1 to 64 of [A-Za-z0-9_-]; adding a name again replaces it
	// Exactly one of Every, Cron and At.
	Every    string    `json:"every,omitempty"`     // a Go duration of 1s or more
	Cron     string    `json:"cron,omitempty"`      // "min hour dom month dow", with a leading seconds field if 6 fields, or @hourly, @daily, @weekly, @monthly, @yearly
	TimeZone string    `json:"time_zone,omitempty"` // an IANA zone for Cron; defaults to UTC
	At       time.Time `json:"at,omitzero"`         // fires once

	Task   string          `json:"task"`
	Args   json.RawMessage `json:"args,omitempty"`   // a JSON array
	Kwargs json.RawMessage `json:"kwargs,omitempty"` // a JSON object
	Queue  string          `json:"queue,omitempty"`  // defaults to QueueDefault
	// Expires bounds how long after it fires a run may start (a Go
	// duration; empty: no bound).
	Expires      string `json:"expires,omitempty"`
	IgnoreResult bool   `json:"ignore_result,omitempty"`
}

// AddSchedule adds s, or replaces the schedule of the same name.
func (c *Client) AddSchedule(ctx context.Context, s Schedule) error {
	if err := c.conn.Do(ctx, "task.schedule.add", s, nil); err != nil {
		return fmt.Errorf("task: add schedule %s: %w", s.Name, err)
	}
	return nil
}

// Schedules lists the schedules, by name.
func (c *Client) Schedules(ctx context.Context) ([]Schedule, error) {
	var out []Schedule
	if err := c.conn.Do(ctx, "task.schedule.list", struct{}{}, &out); err != nil {
		return nil, fmt.Errorf("task: schedules: %w", err)
	}
	return out, nil
}

// ScheduleRef names a schedule in API requests.
type ScheduleRef struct {
	Name string `json:"name"`
}

// RemoveSchedule removes the schedule name; it fires no more.
func (c *Client) RemoveSchedule(ctx context.Context, name string) error {
	if err := c.conn.Do(ctx, "task.schedule.remove", ScheduleRef{name}, nil); err != nil {
		return fmt.Errorf("task: remove schedule %s: %w", name, err)
	}
	return nil
}
