package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// pidsCPU is the CPU time of the processes pids and their descendants.
func pidsCPU(pids []int) (cpuTimes, error) {
	var sum cpuTimes
	if len(pids) == 0 {
		return sum, nil
	}
	tree, err := procTree()
	if err != nil {
		return sum, err
	}
	var add func(pid int)
	add = func(pid int) {
		st := tree[pid]
		sum.user += st.user
		sum.sys += st.sys
		for _, c := range st.children {
			add(c)
		}
	}
	for _, pid := range pids {
		if _, ok := tree[pid]; !ok {
			return sum, fmt.Errorf("process %d is gone", pid)
		}
		add(pid)
	}
	return sum, nil
}

// procStat is a process's CPU time, with that of its children it has
// waited for, and its live children.
type procStat struct {
	cpuTimes
	children []int
}

// procTree reads every process's CPU time from /proc/PID/stat (clock
// ticks: utime+cutime, stime+cstime), keyed by PID, with its children.
func procTree() (map[int]*procStat, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	tree := map[int]*procStat{}
	parent := map[int]int{}
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid <= 0 {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone since ReadDir
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || i+2 > len(s) {
			continue
		}
		f := strings.Fields(s[i+2:])
		if len(f) < 15 {
			continue
		}
		var ppid int
		var ut, st, cut, cst int64
		fmt.Sscan(f[1], &ppid)
		fmt.Sscan(f[11], &ut)
		fmt.Sscan(f[12], &st)
		fmt.Sscan(f[13], &cut)
		fmt.Sscan(f[14], &cst)
		tree[pid] = &procStat{cpuTimes: cpuTimes{time.Duration(ut+cut) * tick, time.Duration(st+cst) * tick}}
		parent[pid] = ppid
	}
	for pid, ppid := range parent {
		if p, ok := tree[ppid]; ok {
			p.children = append(p.children, pid)
		}
	}
	return tree, nil
}
