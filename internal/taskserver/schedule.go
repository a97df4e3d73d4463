package taskserver

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/mortarhq/mortar/task"
	"github.com/nats-io/nats.go/jetstream"
)

// checkScheduleName returns an error unless name is a schedule name,
// which has the form of a queue name.
func checkScheduleName(name string) error {
	if taskwire.CheckQueue(name) != nil {
		return invalid("schedule name %q: want 1 to %d of [A-Za-z0-9_-]", name, taskwire.MaxQueueBytes)
	}
	return nil
}

// scheduleMsg lays a schedule out as the engine's message schedule.
func scheduleMsg(sc *task.Schedule) (*taskwire.Message, map[string]string, error) {
	if err := checkScheduleName(sc.Name); err != nil {
		return nil, nil, err
	}
	n := 0
	for _, set := range []bool{sc.Every != "", sc.Cron != "", !sc.At.IsZero()} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, nil, invalid("schedule %s: want exactly one of every, cron and at", sc.Name)
	}
	hdr := map[string]string{}
	switch {
	case sc.Every != "":
		d, err := time.ParseDuration(sc.Every)
		if err != nil || d < time.Second {
			return nil, nil, invalid("schedule %s: every %q: want a duration of 1s or more", sc.Name, sc.Every)
		}
		hdr["Nats-Schedule"] = "@every " + d.String()
	case sc.Cron != "":
		spec := strings.Join(strings.Fields(sc.Cron), " ")
		switch len(strings.Fields(spec)) {
		case 5:
			spec = "0 " + spec // the engine's cron has a seconds field
		case 6:
		case 1:
			if !strings.HasPrefix(spec, "@") {
				return nil, nil, invalid("schedule %s: cron %q: want 5 or 6 fields or @hourly, @daily, …", sc.Name, sc.Cron)
			}
		default:
			return nil, nil, invalid("schedule %s: cron %q: want 5 or 6 fields or @hourly, @daily, …", sc.Name, sc.Cron)
		}
		hdr["Nats-Schedule"] = spec
		if sc.TimeZone != "" {
			if _, err := time.LoadLocation(sc.TimeZone); err != nil {
				return nil, nil, invalid("schedule %s: time zone %q: %v", sc.Name, sc.TimeZone, err)
			}
			hdr["Nats-Schedule-Time-Zone"] = sc.TimeZone
		}
	default:
		hdr["Nats-Schedule"] = "@at " + sc.At.UTC().Format(time.RFC3339Nano)
	}
	if sc.TimeZone != "" && sc.Cron == "" {
		return nil, nil, invalid("schedule %s: a time zone applies to cron only", sc.Name)
	}
	sc.Queue = cmp.Or(sc.Queue, task.QueueDefault)
	if err := taskwire.CheckQueue(sc.Queue); err != nil {
		return nil, nil, invalid("schedule %s: %v", sc.Name, err)
	}
	if err := taskwire.CheckName(sc.Task); err != nil {
		return nil, nil, invalid("schedule %s: %v", sc.Name, err)
	}
	for _, a := range []struct {
		name string
		raw  json.RawMessage
		open byte
	}{{"args", sc.Args, '['}, {"kwargs", sc.Kwargs, '{'}} {
		if len(a.raw) > 0 && (!json.Valid(a.raw) || a.raw[0] != a.open) {
			return nil, nil, invalid("schedule %s: %s: want a JSON %s", sc.Name, a.name, map[byte]string{'[': "array", '{': "object"}[a.open])
		}
	}
	m := &taskwire.Message{Task: sc.Task, Schedule: sc.Name, Lang: "go", Origin: "schedule " + sc.Name,
		Args: sc.Args, Kwargs: sc.Kwargs, MaxRetries: -1, IgnoreResult: sc.IgnoreResult}
	if sc.Expires != "" {
		d, err := time.ParseDuration(sc.Expires)
		if err != nil || d <= 0 {
			return nil, nil, invalid("schedule %s: expires %q: want a positive duration", sc.Name, sc.Expires)
		}
		m.ExpiresIn = d
	}
	def, _ := json.Marshal(sc)
	hdr[taskwire.HdrScheduleDef] = string(def)
	hdr["Nats-Schedule-Target"] = taskwire.QueueSubject(sc.Queue)
	hdr["Nats-Rollup"] = "sub" // replaces the schedule of the same name
	return m, hdr, nil
}

func (s *Server) addSchedule(ctx context.Context, _ string, sc *task.Schedule) (any, error) {
	m, hdr, err := scheduleMsg(sc)
	if err != nil {
		return nil, err
	}
	msg := m.NewMsg(taskwire.SchedulePrefix + sc.Name)
	for k, v := range hdr {
		msg.Header.Set(k, v)
	}
	_, err = s.js.PublishMsg(ctx, msg)
	if apiErr, ok := errors.AsType[*jetstream.APIError](err); ok && apiErr.Code == 400 {
		return nil, invalid("schedule %s: %s", sc.Name, apiErr.Description)
	}
	return nil, engineErr(err)
}

func (s *Server) listSchedules(ctx context.Context, _ string, _ *struct{}) (any, error) {
	st, err := s.js.Stream(ctx, taskwire.Stream)
	if err != nil {
		return nil, engineErr(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(taskwire.SchedulePrefix+"*"))
	if err != nil {
		return nil, engineErr(err)
	}
	out := []task.Schedule{}
	for subj := range info.State.Subjects {
		m, err := st.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // fired once and gone
		}
		if err != nil {
			return nil, engineErr(err)
		}
		var sc task.Schedule
		if json.Unmarshal([]byte(m.Header.Get(taskwire.HdrScheduleDef)), &sc) != nil {
			sc = task.Schedule{Name: strings.TrimPrefix(subj, taskwire.SchedulePrefix), Task: m.Header.Get(taskwire.HdrTask)}
		}
		out = append(out, sc)
	}
	slices.SortFunc(out, func(a, b task.Schedule) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (s *Server) removeSchedule(ctx context.Context, _ string, r *task.ScheduleRef) (any, error) {
	if err := checkScheduleName(r.Name); err != nil {
		return nil, err
	}
	n, err := s.purgeSubject(ctx, taskwire.SchedulePrefix+r.Name)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, mortar.Errorf(mortar.CodeNotFound, "schedule %s: not found", r.Name)
	}
	return nil, nil
}
