//go:build linux

package sockapi

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// How Dialer dials a name with several addresses, as Go's net.Dialer does
// (net/dial.go): the addresses of one family one after another, each with
// a share of the deadline, and for "tcp" the two families raced after a
// delay (RFC 6555, "Happy Eyeballs: Success with Dual-Stack Hosts":
// prefer the first family, but fall back to the other quickly when it
// does not answer, rather than after a whole connect timeout).

// defaultFallbackDelay is the head start of the first family when
// Dialer.FallbackDelay is 0: net.Dialer's.
const defaultFallbackDelay = 300 * time.Millisecond

// minDialAttempt is the least time an attempt gets when a deadline is
// shared among several addresses, as in the net package: shorter, and a
// connection over a slow path would never be made; the attempts at the
// end of the list lose their share instead.
const minDialAttempt = 2 * time.Second

// partitionFamily splits addrs into those of the first address's family
// (IPv4 or IPv6) and the rest, each in the order given.
func partitionFamily(addrs []netip.AddrPort) (primaries, fallbacks []netip.AddrPort) {
	is4 := addrs[0].Addr().Is4()
	for _, a := range addrs {
		if a.Addr().Is4() == is4 {
			primaries = append(primaries, a)
		} else {
			fallbacks = append(fallbacks, a)
		}
	}
	return primaries, fallbacks
}

// attemptDeadline returns the deadline of the next of n attempts still to
// make before deadline: an equal share of the time left, but at least
// minDialAttempt (or all that is left, if less). It fails with a timeout
// if deadline has passed.
func attemptDeadline(now, deadline time.Time, n int) (time.Time, error) {
	left := deadline.Sub(now)
	if left <= 0 {
		return time.Time{}, netDialTimeoutError{}
	}
	share := max(left/time.Duration(n), min(left, minDialAttempt))
	return now.Add(share), nil
}

// dialSerial connects to the addresses of ras in turn and returns the
// descriptor of the first connection made, or the first address's error.
// If ctx has a deadline, each attempt ends at its attemptDeadline.
func (s *Sockets) dialSerial(ctx context.Context, nw netSpec, local netip.AddrPort, ras []netip.AddrPort) (int, error) {
	var first error
	for i, ra := range ras {
		if err := ctx.Err(); err != nil {
			return -1, nw.dialErr(local, ra, netContextErr(err))
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if deadline, ok := ctx.Deadline(); ok {
			adl, err := attemptDeadline(time.Now(), deadline, len(ras)-i)
			if err != nil {
				if first == nil {
					first = nw.dialErr(local, ra, err)
				}
				break
			}
			if adl.Before(deadline) {
				actx, cancel = context.WithDeadline(ctx, adl)
			}
		}
		fd, err := s.dialOne(actx, nw, local, ra)
		cancel()
		if err == nil {
			return fd, nil
		}
		if first == nil {
			first = err
		}
	}
	return -1, first
}

// dialResult is the outcome of one racer of dialParallel.
type dialResult struct {
	fd      int
	err     error
	primary bool
}

// dialParallel dials primaries, and after the fallback delay (or as soon
// as the primaries have all failed) fallbacks alongside, each list with
// dialSerial. The first connection made wins. Before it returns, the other
// racer is cancelled and waited for, and a connection it made all the same
// is closed: no goroutine or descriptor outlives the call. If both lists
// fail, the error is the primaries'.
func (d *Dialer) dialParallel(ctx context.Context, nw netSpec, local netip.AddrPort, primaries, fallbacks []netip.AddrPort) (int, error) {
	if len(fallbacks) == 0 {
		return d.Sockets.dialSerial(ctx, nw, local, primaries)
	}
	ctx, cancel := context.WithCancel(ctx)
	results := make(chan dialResult, 2) // one per racer: a racer never blocks
	var wg sync.WaitGroup
	race := func(ras []netip.AddrPort, primary bool) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fd, err := d.Sockets.dialSerial(ctx, nw, local, ras)
			results <- dialResult{fd, err, primary}
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
		close(results)
		for r := range results {
			if r.err == nil {
				d.Sockets.Close(r.fd) // the loser connected too
			}
		}
	}()
	race(primaries, true)
	timer := time.NewTimer(d.fallbackDelay())
	defer timer.Stop()
	startFallback := timer.C
	var primaryErr error
	for running := 1; ; {
		select {
		case <-startFallback:
			startFallback = nil
			race(fallbacks, false)
			running++
		case r := <-results:
			running--
			if r.err == nil {
				return r.fd, nil
			}
			if r.primary {
				primaryErr = r.err
				if startFallback != nil {
					// The primaries failed before their head start
					// ran out: no reason to wait any longer.
					startFallback = nil
					race(fallbacks, false)
					running++
				}
			}
			if running == 0 {
				return -1, primaryErr
			}
		}
	}
}

// fallbackDelay is FallbackDelay, or defaultFallbackDelay for 0.
func (d *Dialer) fallbackDelay() time.Duration {
	if d.FallbackDelay > 0 {
		return d.FallbackDelay
	}
	return defaultFallbackDelay
}
