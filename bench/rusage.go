package main

import (
	"fmt"
	"syscall"
	"time"
)

// cpuTimes is a process's CPU time so far, from getrusage(RUSAGE_SELF):
// every thread, including the garbage collector's.
type cpuTimes struct {
	user, sys time.Duration
}

func (c cpuTimes) total() time.Duration { return c.user + c.sys }

func (c cpuTimes) sub(d cpuTimes) cpuTimes { return cpuTimes{c.user - d.user, c.sys - d.sys} }

// selfCPU reads this process's CPU time.
func selfCPU() (cpuTimes, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuTimes{}, fmt.Errorf("getrusage: %w", err)
	}
	return cpuTimes{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}, nil
}

// cpuLine formats c as the server reports it: "cpu USER_NS SYS_NS".
func cpuLine(c cpuTimes) string {
	return fmt.Sprintf("cpu %d %d", c.user.Nanoseconds(), c.sys.Nanoseconds())
}

// parseCPULine parses a line that cpuLine wrote.
func parseCPULine(line string) (cpuTimes, error) {
	var user, sys int64
	if _, err := fmt.Sscanf(line, "cpu %d %d", &user, &sys); err != nil {
		return cpuTimes{}, fmt.Errorf("parse %q: %w", line, err)
	}
	return cpuTimes{time.Duration(user), time.Duration(sys)}, nil
}
