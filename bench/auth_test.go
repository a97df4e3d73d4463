package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestAuthShort runs "bench auth" briefly and checks its figures are
// sane; it does not hold the run to the 2 µs goal (the machine's noise
// would decide).
func TestAuthShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	out, _ := runDriver(t, 0, "auth", "-short", "-o", "json")
	var rep authReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	c := rep.Checks
	if !c.Agree || c.Grants != authGrants || c.Requests != authRequests || c.Permitted != authRequests/2 || len(c.Results) != 2 ||
		c.ScanExamined < 1 || c.ScanExamined > authGrants || c.Compile <= 0 || c.Ratio <= 0 {
		t.Errorf("bad check figures %+v", c)
	}
	for _, r := range c.Results {
		if r.ChecksPerSec <= 0 || r.NsPerCheck <= 0 || r.AllocsPerCheck < 0 {
			t.Errorf("%s: bad figures %+v", r.Implementation, r)
		}
	}
	if r := rep.RPC; r.Rounds != shortAuthRPCRounds || r.PayloadBytes != authPayload || r.Unchecked <= 0 || r.Checked <= 0 ||
		r.OverheadQ1 > r.Overhead || r.Overhead > r.OverheadQ3 || r.Goal != authCallGoal {
		t.Errorf("bad rpc figures %+v", r)
	}
	if i := rep.Interceptors; i.NsPerOp <= 0 || i.AllocsPerOp <= 0 {
		t.Errorf("bad interceptor figures %+v", i)
	}
	t.Logf("compiled %.0f checks/s, scan %.0f; rpc overhead %v (IQR %v to %v); interceptors %.0f ns/op",
		c.Results[0].ChecksPerSec, c.Results[1].ChecksPerSec, rep.RPC.Overhead, rep.RPC.OverheadQ1, rep.RPC.OverheadQ3, rep.Interceptors.NsPerOp)
}

func TestAuthUsageErrors(t *testing.T) {
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"auth", "-rounds", "0"}, `must be at least 1`},
		{[]string{"auth", "-rpc-duration", "0s"}, `must be positive`},
		{[]string{"auth", "-o", "xml"}, `want markdown or json`},
		{[]string{"auth", "extra"}, `unexpected arguments`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			_, stderr := runDriver(t, 2, tt.args...)
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr)
			}
		})
	}
}

func TestParseAuthOptionsShort(t *testing.T) {
	o, err := parseAuthOptions([]string{"-short", "-rounds", "3"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.rounds != 3 || o.duration != shortAuthDuration || o.rpcRounds != shortAuthRPCRounds || o.rpcDuration != shortAuthRPCDuration {
		t.Errorf("-short -rounds 3: %+v", o)
	}
}
