package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// duration is a time.Duration in JSON as a Go duration string ("15s");
// it also accepts a number of nanoseconds.
type duration time.Duration

func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: want a number and a unit, like 15s or 500ms", s)
		}
		*d = duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration %s: want a string like \"15s\"", b)
	}
	*d = duration(n)
	return nil
}

// strictUnmarshal decodes b into v, rejecting unknown fields.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

type instanceFields Instance // Instance without its methods

type instanceJSON struct {
	*instanceFields
	TTL duration `json:"ttl,omitempty"`
}

// MarshalJSON writes TTL as a duration string.
func (in Instance) MarshalJSON() ([]byte, error) {
	return json.Marshal(instanceJSON{(*instanceFields)(&in), duration(in.TTL)})
}

// UnmarshalJSON reads TTL as a duration string (or nanoseconds) and
// rejects unknown fields.
func (in *Instance) UnmarshalJSON(b []byte) error {
	w := instanceJSON{instanceFields: (*instanceFields)(in)}
	if err := strictUnmarshal(b, &w); err != nil {
		return err
	}
	in.TTL = time.Duration(w.TTL)
	return nil
}

type checkFields Check

type checkJSON struct {
	*checkFields
	Interval duration `json:"interval,omitempty"`
	Timeout  duration `json:"timeout,omitempty"`
}

// MarshalJSON writes Interval and Timeout as duration strings.
func (c Check) MarshalJSON() ([]byte, error) {
	return json.Marshal(checkJSON{(*checkFields)(&c), duration(c.Interval), duration(c.Timeout)})
}

// UnmarshalJSON reads Interval and Timeout as duration strings (or
// nanoseconds) and rejects unknown fields.
func (c *Check) UnmarshalJSON(b []byte) error {
	w := checkJSON{checkFields: (*checkFields)(c)}
	if err := strictUnmarshal(b, &w); err != nil {
		return err
	}
	c.Interval, c.Timeout = time.Duration(w.Interval), time.Duration(w.Timeout)
	return nil
}
