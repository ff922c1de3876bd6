package load

import (
	"fmt"
	"os"
	"strings"
)

// Average returns the 1-minute load average from /proc/loadavg, or "unknown".
func Average() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// Report prints the load average now ("start") and returns a function that prints it again
// ("end"): call it as defer load.Report()().
func Report() func() {
	fmt.Printf("load average (1 min) at start: %s\n", Average())
	return func() { fmt.Printf("load average (1 min) at end: %s\n", Average()) }
}
