package handlers

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ParseTrustedProxies reads the proxies whose X-Forwarded-For header the
// per-address limits believe, each an address (192.0.2.1, 2001:db8::1) or
// a CIDR prefix (10.0.0.0/8).
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			if p.Addr().Is4In6() {
				return nil, fmt.Errorf("trusted proxy %q: write an IPv4 prefix as such", s)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not an address or CIDR prefix", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// clientKeys names the client a request comes from, for the per-address
// limits: the peer's address, or behind a trusted proxy the address that
// proxy says it forwarded for. IPv6 clients are keyed by their /64: one
// subscriber is usually given a whole /64, so keying by the full address
// would give it 2^64 budgets.
type clientKeys struct{ trusted []netip.Prefix }

func (k clientKeys) isTrusted(a netip.Addr) bool {
	for _, p := range k.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// key returns the client's key. X-Forwarded-For is read only when the
// peer is a trusted proxy, and from the right: each proxy appends the
// address it was reached from, so the rightmost address that is not a
// trusted proxy is the client as the first trusted proxy saw it. Anything
// to its left was written by the client and proves nothing.
func (k clientKeys) key(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return r.RemoteAddr // not an IP peer (a test, a Unix socket): one key
	}
	client := peer.Unmap().WithZone("")
	if len(k.trusted) > 0 && k.isTrusted(client) {
		hops := r.Header.Values("X-Forwarded-For")
	walk:
		for i := len(hops) - 1; i >= 0; i-- {
			parts := strings.Split(hops[i], ",")
			for j := len(parts) - 1; j >= 0; j-- {
				a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
				if err != nil {
					break walk // a garbled hop: keep the last proxy's word
				}
				client = a.Unmap().WithZone("")
				if !k.isTrusted(client) {
					break walk
				}
			}
		}
	}
	if client.Is6() {
		return netip.PrefixFrom(client, 64).Masked().String()
	}
	return client.String()
}

// Failed authentication is limited per remote address: a terminal with a
// mistyped token recovers within a minute, a guesser gets ten tries a
// minute.
const (
	authFailureRate  = rate.Limit(10.0 / 60)
	authFailureBurst = 10
	// maxTrackedAddresses bounds the limiter's memory. When the table is
	// full, addresses whose budget has refilled are forgotten (they carry
	// no state); when none has, a new address is refused until one has: a
	// flood of addresses may deny the limited routes to newcomers, but
	// never lifts the limit (found in review: it used to let them through
	// unlimited).
	maxTrackedAddresses = 10_000
	// pruneEvery spaces the sweeps for refilled addresses: a sweep reads
	// the whole table under the lock, and a flood of new addresses would
	// otherwise pay one per request.
	pruneEvery = time.Second
)

// addressLimiter keeps a token bucket per client key. Safe for concurrent
// use.
type addressLimiter struct {
	mu        sync.Mutex
	limit     rate.Limit
	burst     int
	max       int
	byAddr    map[string]*rate.Limiter
	tripped   map[string]bool
	nextPrune time.Time
}

func newAddressLimiter(limit rate.Limit, burst int) *addressLimiter {
	return &addressLimiter{limit: limit, burst: burst, max: maxTrackedAddresses,
		byAddr: map[string]*rate.Limiter{}, tripped: map[string]bool{}}
}

// spend takes one from addr's budget. allowed is false when the budget is
// spent, or when addr is new and the table is full of addresses still
// limited. tripped is true for the spend that used the address's last
// token (worth one log line, not one per attempt).
func (l *addressLimiter) spend(addr string) (allowed, tripped bool) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, found := l.byAddr[addr]
	if !found {
		if len(l.byAddr) >= l.max && !now.Before(l.nextPrune) {
			l.nextPrune = now.Add(pruneEvery)
			for a, al := range l.byAddr {
				if al.TokensAt(now) >= float64(l.burst) {
					delete(l.byAddr, a)
					delete(l.tripped, a)
				}
			}
		}
		if len(l.byAddr) >= l.max {
			return false, false
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.byAddr[addr] = lim
	}
	if !lim.AllowN(now, 1) {
		return false, false
	}
	if lim.TokensAt(now) < 1 {
		if !l.tripped[addr] {
			l.tripped[addr] = true
			return true, true
		}
		return true, false
	}
	delete(l.tripped, addr)
	return true, false
}
