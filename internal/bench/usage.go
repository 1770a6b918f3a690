package bench

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Usage is the CPU time and memory of this process.
type Usage struct {
	// CPU is user plus system time.
	CPU time.Duration `json:"cpu"`
	// PeakRSS is the resident set's high-water mark (VmHWM), in bytes;
	// zero where the platform does not say.
	PeakRSS int64 `json:"peak_rss"`
}

// ProcessUsage returns this process's usage so far.
func ProcessUsage() Usage {
	var u Usage
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		u.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	u.PeakRSS = peakRSS()
	return u
}

// peakRSS reads VmHWM from /proc/self/status.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, err := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
