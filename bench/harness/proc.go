package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat. It is
// 100 on every Linux ABI the collector runs on (it is fixed for userspace,
// whatever the kernel's HZ).
const clockTicks = 100

// cpuTimes reads /proc/<pid>/stat and returns the process's own CPU time
// (utime+stime) and that of its reaped children (cutime+cstime), in seconds.
func cpuTimes(pid int) (self, children float64, ppid int, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	// The command name (field 2) is parenthesised and may hold spaces: the
	// fields that follow start after the last ')'.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(raw[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
	if len(f) < 15 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: only %d fields", pid, len(f)+2)
	}
	num := func(k int) float64 { v, _ := strconv.ParseFloat(f[k], 64); return v }
	ppid, _ = strconv.Atoi(f[1])
	return (num(11) + num(12)) / clockTicks, (num(13) + num(14)) / clockTicks, ppid, nil
}

// CPUSeconds is the CPU time (user+system) a process has used so far.
func CPUSeconds(pid int) (float64, error) {
	self, _, _, err := cpuTimes(pid)
	return self, err
}

// TreeCPUSeconds is the CPU time of a process, its live children and its
// reaped children: for a PostgreSQL postmaster, the whole server.
func TreeCPUSeconds(pid int) (float64, error) {
	self, reaped, _, err := cpuTimes(pid)
	if err != nil {
		return 0, err
	}
	total := self + reaped
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		child, err := strconv.Atoi(filepath.Base(d))
		if err != nil || child == pid {
			continue
		}
		c, _, ppid, err := cpuTimes(child)
		if err == nil && ppid == pid {
			total += c
		}
	}
	return total, nil
}

// Memory is what /proc/<pid>/status says of a process's resident memory.
type Memory struct {
	RSSBytes  int64 // VmRSS: now
	PeakBytes int64 // VmHWM: the high-water mark since the process started
}

// ReadMemory reads VmRSS and VmHWM from /proc/<pid>/status.
func ReadMemory(pid int) (Memory, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			m.RSSBytes = n << 10
		case "VmHWM":
			m.PeakBytes = n << 10
		}
	}
	if m.PeakBytes == 0 {
		return m, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
	}
	return m, nil
}

const mib = 1 << 20
