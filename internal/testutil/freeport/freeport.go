// Package freeport hands out loopback TCP ports for tests and benchmarks
// that start servers in other processes (the collector binary, PostgreSQL).
//
// Asking the kernel for port 0 returns a port from the ephemeral range, the
// same range outgoing connections take their source ports from. Between the
// moment such a port is handed out and the moment the child process binds it,
// any client connection on the machine (tests run packages in parallel, each
// opening hundreds of connections) can take it as its source port, and the
// child fails with "address already in use". So ports come from below the
// ephemeral range, chosen at random, never handed out twice by one process,
// and checked to be bindable.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the bottom of the range ports are picked from: above the
// registered services most machines run (PostgreSQL 5432, 8080, ...).
const lowest = 10000

var (
	mu     sync.Mutex
	issued = map[int]bool{}
)

// Port returns a loopback TCP port that is outside the ephemeral range,
// was bindable a moment ago, and has not been returned before by this
// process.
func Port() (int, error) {
	highest := ephemeralLow() - 1
	mu.Lock()
	defer mu.Unlock()
	for range 1000 {
		p := lowest + rand.IntN(highest-lowest+1)
		if issued[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		_ = l.Close()
		issued[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("freeport: no bindable port in %d-%d after 1000 tries", lowest, highest)
}

// ephemeralLow reads the bottom of the kernel's ephemeral port range
// (Linux default 32768).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > lowest+1000 {
				return n
			}
		}
	}
	return 32768
}

// Addr returns "127.0.0.1:<port>" for a port from Port.
func Addr() (string, error) {
	p, err := Port()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}
