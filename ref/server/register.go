package server

import (
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/missive-protocol/missive/internal/faults"
)

// maxRegisterSources bounds the sources whose registrations the server
// tracks at once (SRV-026 lets it refuse a source it does not track yet
// while it tracks that many): each costs a limiter, and a flood from many
// addresses must not cost memory without bound.
const maxRegisterSources = 1 << 16

// registrations is the token bucket of each source that registered new
// accounts lately (SRV-026). A source whose bucket is full again is
// forgotten: its new bucket is the same.
type registrations struct {
	burst     int // 0: no limit
	mu        sync.Mutex
	sources   map[string]*rate.Limiter
	lastSweep time.Time
}

// newRegistrations makes the limits of registrations: burst overrides
// REGISTER_BURST when positive; a negative burst lifts the limit.
func newRegistrations(burst int) *registrations {
	switch {
	case burst == 0:
		burst = RegisterBurst
	case burst < 0:
		burst = 0
	}
	return &registrations{burst: burst, sources: map[string]*rate.Limiter{}}
}

// sourcesOf returns the buckets a registration from a takes a token of,
// coarsest first: the IPv4 address; or the /48, /56 and /64 prefixes of
// an IPv6 address. A /64 alone is what one host or LAN gets, but one
// site gets a /56 or a /48 (65,536 /64s, free from a tunnel broker):
// counted per /64 alone, one site registered REGISTER_BURST accounts from
// each of them, and filled the table of sources.
func sourcesOf(a net.Addr) []string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return []string{a.String()}
	}
	if ip := tcp.IP.To4(); ip != nil {
		return []string{ip.String()}
	}
	return []string{
		tcp.IP.Mask(net.CIDRMask(48, 128)).String() + "/48",
		tcp.IP.Mask(net.CIDRMask(56, 128)).String() + "/56",
		tcp.IP.Mask(net.CIDRMask(64, 128)).String(),
	}
}

// take takes a token of each of sources' buckets at now (the real time,
// which the limiters use), or none and returns how long until one is due.
// The buckets are looked at coarsest first, and one is made for a source
// only once the coarser ones allow: a refused prefix adds nothing to the
// table.
func (r *registrations) take(sources []string, now time.Time) (wait time.Duration, ok bool) {
	if r.burst == 0 || faults.Has(faults.NoRegisterLimit) {
		return 0, true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	taken := make([]*rate.Reservation, 0, len(sources))
	refuse := func(d time.Duration) (time.Duration, bool) {
		for _, res := range taken {
			res.CancelAt(now)
		}
		return d, false
	}
	for _, source := range sources {
		l := r.sources[source]
		if l == nil {
			if len(r.sources) >= maxRegisterSources && now.Sub(r.lastSweep) >= time.Second {
				r.sweep(now)
			}
			if len(r.sources) >= maxRegisterSources {
				return refuse(RegisterEvery)
			}
			l = rate.NewLimiter(rate.Every(RegisterEvery), r.burst)
			r.sources[source] = l
		}
		res := l.ReserveN(now, 1)
		if d := res.DelayFrom(now); d > 0 {
			res.CancelAt(now)
			return refuse(d)
		}
		taken = append(taken, res)
	}
	return 0, true
}

// sweep forgets the sources whose bucket is full again. Called with r.mu
// held, at most once a second: a flood from many sources must not make
// every registration walk them all.
func (r *registrations) sweep(now time.Time) {
	r.lastSweep = now
	for s, l := range r.sources {
		if l.TokensAt(now) >= float64(r.burst) {
			delete(r.sources, s)
		}
	}
}
