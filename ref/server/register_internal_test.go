package server

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"
)

// TestRegisterSourceOf checks what sourcesOf makes a source of (SRV-026):
// an IPv4 address, also when it comes IPv4-mapped in IPv6, and the /64
// prefix of an IPv6 address (with its /56 and /48).
func TestRegisterSourceOf(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"192.0.2.1", "::ffff:192.0.2.1"},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
	} {
		sa := sourcesOf(&net.TCPAddr{IP: net.ParseIP(c.a), Port: 1})
		sb := sourcesOf(&net.TCPAddr{IP: net.ParseIP(c.b), Port: 2})
		if !slices.Equal(sa, sb) {
			t.Errorf("sourcesOf(%s) = %q, sourcesOf(%s) = %q: want the same sources", c.a, sa, c.b, sb)
		}
	}
}

// v6 returns an address of the i-th /64 of the /48 2001:db8:1::/48.
func v6(i int) net.Addr {
	return &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("2001:db8:1:%x::1", i)), Port: 1000 + i%1000}
}

// TestRegistrationsOneIPv6Site checks that one IPv6 site, a /48 (what a
// tunnel broker hands out for free, and many ISPs give each customer),
// cannot register REGISTER_BURST new accounts from each of its 65,536
// /64s: counted per /64 alone, SRV-026 lets one such customer register
// 65 million accounts at once and 6,553 per second after, which is the
// "without end" the limit was made against.
func TestRegistrationsOneIPv6Site(t *testing.T) {
	r := newRegistrations(0)
	now := time.Now()
	const subnets = 2 * RegisterBurst
	welcomed := 0
	for i := range subnets {
		if _, ok := takeFrom(r, v6(i), now); ok {
			welcomed++
		}
	}
	if welcomed > RegisterBurst {
		t.Errorf("new accounts registered at once from %d /64s of one /48, one each: got %d, want at most REGISTER_BURST (%d)", subnets, welcomed, RegisterBurst)
	}
}

// TestRegistrationsTableNotLockedByOneSite checks that one /48 cannot fill
// the table of sources (maxRegisterSources) with its /64s, one
// registration each, and so lock every other new source out of
// registering (SRV-026 lets a full table refuse new sources).
func TestRegistrationsTableNotLockedByOneSite(t *testing.T) {
	r := newRegistrations(0)
	now := time.Now()
	for i := range maxRegisterSources {
		takeFrom(r, v6(i), now)
	}
	fresh := &net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 1}
	if wait, ok := takeFrom(r, fresh, now); !ok {
		t.Errorf("a registration from a new IPv4 source after one /48 registered once from each of its /64s: refused (retry after %v), want it taken; table holds %d sources", wait, len(r.sources))
	}
}

// takeFrom takes a registration token for a connection from a.
func takeFrom(r *registrations, a net.Addr, now time.Time) (time.Duration, bool) {
	return r.take(sourcesOf(a), now)
}
