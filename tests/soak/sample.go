//go:build linux

package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// metric is one figure the driver samples, with what counts as growth.
type metric struct {
	name string
	// abs and rel are the tolerance: a value v may exceed a reference r
	// by abs + rel*r before it counts as growth.
	abs, rel float64
	// settles marks figures that must come back to their baseline once
	// the load stops (goroutines, descriptors, endpoints, connections),
	// to within back of it; memory need not, as Go returns it to the OS
	// lazily.
	settles bool
	back    float64
	bytes   bool // print in MiB
}

// Tolerances. The counts move with the connections in flight (a few per
// worker) and with TIME_WAIT (1 s in ustack's stacks), so a little slack
// in absolute terms; memory moves with the garbage collector, so more.
var (
	mGoroutines = metric{name: "goroutines", abs: 24, rel: 0.10, settles: true, back: 4}
	mThreads    = metric{name: "threads", abs: 4, rel: 0.25}
	mFDs        = metric{name: "fds", abs: 12, rel: 0.10, settles: true, back: 2}
	mRSS        = metric{name: "rss", abs: 24 << 20, rel: 0.15, bytes: true}
	mHeap       = metric{name: "heap_alloc", abs: 24 << 20, rel: 0.25, bytes: true}
	mHeapObj    = metric{name: "heap_objects", abs: 100000, rel: 0.25}
	mEndpoints  = metric{name: "endpoints", abs: 24, rel: 0.10, settles: true, back: 2}
	mCleanup    = metric{name: "cleanup_endpoints", abs: 24, rel: 0.10, settles: true, back: 2}
	mEstab      = metric{name: "tcp_established", abs: 16, rel: 0.10, settles: true, back: 2}
	mTCPActive  = metric{name: "relay_tcp_active", abs: 16, rel: 0.10, settles: true, back: 2}
	mUDPActive  = metric{name: "relay_udp_active", abs: 16, rel: 0.10}
	mMaxFD      = metric{name: "max_sockapi_fd", abs: 16, rel: 0.10}
)

// sample is one reading of every metric, at an offset from the start.
type sample struct {
	at     time.Duration
	values map[string]float64
}

// recorder collects samples of one process.
type recorder struct {
	metrics []metric
	read    func() (map[string]float64, error)
	start   time.Time

	mu       sync.Mutex // guards the fields below
	baseline map[string]float64
	load     []sample
	final    map[string]float64
	settled  time.Duration // how long the figures took to settle after the load
	errs     int
	lastErr  error
}

func newRecorder(read func() (map[string]float64, error), ms ...metric) *recorder {
	return &recorder{metrics: ms, read: read, start: time.Now()}
}

func (r *recorder) take() (map[string]float64, error) {
	v, err := r.read()
	if err != nil {
		r.mu.Lock()
		r.errs++
		r.lastErr = err
		r.mu.Unlock()
	}
	return v, err
}

// takeBaseline reads the figures before any load.
func (r *recorder) takeBaseline() error {
	v, err := r.take()
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	r.mu.Lock()
	r.baseline = v
	r.mu.Unlock()
	return nil
}

// sampleEvery reads the figures every interval until stop is closed,
// printing a line for each when verbose.
func (r *recorder) sampleEvery(interval time.Duration, stop <-chan struct{}, log io.Writer) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		v, err := r.take()
		if err != nil {
			fmt.Fprintf(log, "soak: sample: %v\n", err)
			continue
		}
		at := time.Since(r.start)
		r.mu.Lock()
		r.load = append(r.load, sample{at: at, values: v})
		r.mu.Unlock()
		fmt.Fprintf(log, "%7.0fs %s\n", at.Seconds(), r.line(v))
	}
}

func (r *recorder) line(v map[string]float64) string {
	var b strings.Builder
	for _, m := range r.metrics {
		fmt.Fprintf(&b, " %s=%s", m.name, m.format(v[m.name]))
	}
	return b.String()
}

// settle reads the figures every interval, after the load, until every
// settling one is back within tolerance of its baseline or max passes,
// and keeps the last reading.
func (r *recorder) settle(interval, max time.Duration) {
	t0 := time.Now()
	for {
		v, err := r.take()
		if err == nil {
			r.mu.Lock()
			r.final, r.settled = v, time.Since(t0)
			r.mu.Unlock()
			if r.allSettled(v) {
				return
			}
		}
		if time.Since(t0) >= max {
			return
		}
		time.Sleep(interval)
	}
}

func (r *recorder) allSettled(v map[string]float64) bool {
	for _, m := range r.metrics {
		if m.settles && !m.isBack(v[m.name], r.baseline[m.name]) {
			return false
		}
	}
	return true
}

func (m metric) within(v, ref float64) bool { return v <= ref+m.abs+m.rel*ref }

func (m metric) isBack(v, base float64) bool { return v <= base+m.back }

func (m metric) format(v float64) string {
	if m.bytes {
		return strconv.FormatFloat(v/(1<<20), 'f', 1, 64) + "M"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// verdict is the analysis of one metric.
type verdict struct {
	m                  metric
	base, first, last  float64 // baseline, median of the first and second half after warm-up
	max, final         float64
	plateau, returned  bool
	firstN, lastN      int
	growth, growthRate float64 // last-first, and per minute of the window
}

// analyse splits the samples after warmup into two halves and compares
// their medians: a plateau is a second half within tolerance of the first.
// Settling figures must also be back within tolerance of the baseline
// after the load.
func (r *recorder) analyse(warmup time.Duration) []verdict {
	r.mu.Lock()
	defer r.mu.Unlock()
	var after []sample
	for _, s := range r.load {
		if s.at >= warmup {
			after = append(after, s)
		}
	}
	var out []verdict
	half := len(after) / 2
	for _, m := range r.metrics {
		v := verdict{m: m, base: r.baseline[m.name], plateau: true, returned: true}
		if half > 0 {
			a, b := values(after[:half], m.name), values(after[half:], m.name)
			v.first, v.last = median(a), median(b)
			v.firstN, v.lastN = len(a), len(b)
			v.max = slices.Max(append(a, b...))
			v.growth = v.last - v.first
			span := after[len(after)-1].at - after[0].at
			if span > 0 {
				v.growthRate = v.growth / span.Minutes() * 2 // halves' medians are half the span apart
			}
			v.plateau = m.within(v.last, v.first)
		}
		if r.final != nil {
			v.final = r.final[m.name]
			if m.settles {
				v.returned = m.isBack(v.final, v.base)
			}
		}
		out = append(out, v)
	}
	return out
}

func values(ss []sample, name string) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = s.values[name]
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// report prints the table for one target and returns whether every
// metric passed.
func (r *recorder) report(w io.Writer, title string, warmup time.Duration) bool {
	vs := r.analyse(warmup)
	r.mu.Lock()
	n, errs, lastErr, settled, final := len(r.load), r.errs, r.lastErr, r.settled, r.final
	r.mu.Unlock()
	fmt.Fprintf(w, "\n== %s: %d samples, warm-up %v", title, n, warmup)
	if final != nil {
		fmt.Fprintf(w, ", settled after the load in %v", settled.Round(time.Second))
	}
	fmt.Fprintln(w)
	if errs > 0 {
		fmt.Fprintf(w, "   %d failed samples (last: %v)\n", errs, lastErr)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "metric\tbaseline\t1st half\t2nd half\tmax\tgrowth/min\tafter load\tverdict\t")
	ok := true
	for _, v := range vs {
		verdict := "ok"
		switch {
		case !v.plateau:
			verdict, ok = "GROWS", false
		case !v.returned:
			verdict, ok = "NOT BACK", false
		}
		after := "-"
		if final != nil {
			after = v.m.format(v.final)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", v.m.name, v.m.format(v.base),
			v.m.format(v.first), v.m.format(v.last), v.m.format(v.max), v.m.format(v.growthRate),
			after, verdict)
	}
	tw.Flush()
	if n < 4 {
		fmt.Fprintf(w, "   too few samples after warm-up to judge a plateau (run longer or sample more often)\n")
	}
	return ok
}

// procFigures reads a process's RSS, threads and descriptors from /proc.
func procFigures(pid int) (map[string]float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	v := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseFloat(f[0], 64)
		switch k {
		case "VmRSS":
			v[mRSS.name] = n * 1024
		case "Threads":
			v[mThreads.name] = n
		}
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	v[mFDs.name] = float64(len(ents))
	return v, nil
}
