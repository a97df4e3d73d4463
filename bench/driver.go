package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// driveMain is the default command: it measures, then writes the report.
func driveMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return parseExitCode(err)
	}
	rep := newReport(o)
	if err := runRounds(ctx, o, rep, stderr); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	if err := rep.write(stdout, o.format); err != nil {
		fmt.Fprintf(stderr, "bench: write report: %v\n", err)
		return 1
	}
	return 0
}

// runRounds measures every concurrency level and system, o.rounds times,
// with the systems interleaved within each round, and fills rep with the
// medians. Progress goes to stderr.
func runRounds(ctx context.Context, o *options, rep *report, stderr io.Writer) error {
	samples := make(map[sampleKey][]stats)
	for round := 1; round <= o.rounds; round++ {
		for _, conc := range o.concurrency {
			for _, name := range o.systems {
				st, err := measure(ctx, systems[name], conc, o, stderr)
				if err != nil {
					return fmt.Errorf("round %d, %s, %d callers: %w", round, name, conc, err)
				}
				fmt.Fprintf(stderr, "round %d/%d  %-8s %3d callers  %9.0f calls/s  p50 %v\n",
					round, o.rounds, name, conc, st.CallsPerSec, st.P50)
				k := sampleKey{conc, name}
				samples[k] = append(samples[k], st)
			}
		}
	}
	for _, conc := range o.concurrency {
		rep.addLevel(conc, o.systems, func(name string) stats {
			return medianStats(samples[sampleKey{conc, name}])
		})
	}
	return nil
}

type sampleKey struct {
	concurrency int
	system      string
}

// medianStats is the median of each metric on its own.
func medianStats(ss []stats) stats {
	pick := func(f func(stats) float64) float64 {
		xs := make([]float64, len(ss))
		for i, s := range ss {
			xs[i] = f(s)
		}
		return median(xs)
	}
	dur := func(f func(stats) time.Duration) time.Duration {
		return time.Duration(pick(func(s stats) float64 { return float64(f(s)) }))
	}
	return stats{
		Calls:               int64(pick(func(s stats) float64 { return float64(s.Calls) })),
		CallsPerSec:         pick(func(s stats) float64 { return s.CallsPerSec }),
		P50:                 dur(func(s stats) time.Duration { return s.P50 }),
		P90:                 dur(func(s stats) time.Duration { return s.P90 }),
		P99:                 dur(func(s stats) time.Duration { return s.P99 }),
		ClientAllocsPerCall: pick(func(s stats) float64 { return s.ClientAllocsPerCall }),
		ClientCPUPerCall:    dur(func(s stats) time.Duration { return s.ClientCPUPerCall }),
		ServerCPUPerCall:    dur(func(s stats) time.Duration { return s.ServerCPUPerCall }),
	}
}

// median returns the middle of xs, or the mean of the two middles; 0 for
// none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}
