//go:build linux

// Command soak runs ustack for a long time under mixed churn and reports
// whether its goroutines, descriptors, memory and sockets reach a plateau
// and come back down once the load stops. It is the long mode of the soak
// check (tests/soak.sh, docs/soak.md); tests/soak_test.go and the
// packages' own soak tests are the CI-sized ones.
//
//	soak -mode serve|run|embed|all [-duration 3m] [-warmup D] [-interval 5s]
//	     [-rate 200] [-workers 8] [-ustack PATH] [-settle 3m]
//
// serve and run need root (a network namespace, a TUN device) and the
// ustack binary (-ustack); embed runs sockapi in this process. Every
// namespace, device, socket file and process it makes is named soak* and
// removed when it ends, also on SIGINT/SIGTERM or a failure.
//
// The exit status is 0 when every figure passed, 1 when one grew or did
// not come back, 2 on a usage error or a failure to run.
//
// The same binary is the load inside the namespaces: "soak client-serve"
// and "soak client-run" (started by the driver, not by hand).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// options are the flags every mode shares.
type options struct {
	mode     string
	duration time.Duration
	warmup   time.Duration
	interval time.Duration
	settle   time.Duration
	rate     int
	workers  int
	ustack   string
	verbose  bool
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "client-serve":
			os.Exit(clientServe(os.Args[2:]))
		case "client-run":
			os.Exit(clientRun(os.Args[2:]))
		}
	}
	os.Exit(drive(os.Args[1:]))
}

func drive(args []string) int {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.mode, "mode", "all", "what to soak: serve, run, embed or all (comma-separated list also works)")
	fs.DurationVar(&o.duration, "duration", envDuration("SOAK_DURATION", 3*time.Minute), "how long each mode's load runs (env SOAK_DURATION)")
	fs.DurationVar(&o.warmup, "warmup", 0, "samples before this are not judged; 0 means a third of -duration")
	fs.DurationVar(&o.interval, "interval", 5*time.Second, "time between samples")
	fs.DurationVar(&o.settle, "settle", 3*time.Minute, "after the load, wait at most this long for counts to return to their baseline (serve's keep-alive ends a vanished peer's connection after 150 s)")
	fs.IntVar(&o.rate, "rate", 200, "operations per second started, across all workers, per mode")
	fs.IntVar(&o.workers, "workers", 8, "concurrent clients per mode")
	fs.StringVar(&o.ustack, "ustack", "", "the ustack binary (serve and run modes)")
	fs.BoolVar(&o.verbose, "v", true, "print every sample")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.warmup == 0 {
		o.warmup = o.duration / 3
	}
	modes := strings.Split(o.mode, ",")
	if o.mode == "all" {
		modes = []string{"embed", "serve", "run"}
	}
	for _, m := range modes {
		if m != "embed" && o.ustack == "" {
			fmt.Fprintf(os.Stderr, "soak: -mode %s needs -ustack PATH\n", m)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	status := 0
	for _, m := range modes {
		var ok bool
		var err error
		switch m {
		case "embed":
			ok, err = soakEmbed(ctx, o)
		case "serve":
			ok, err = soakServe(ctx, o)
		case "run":
			ok, err = soakRun(ctx, o)
		default:
			fmt.Fprintf(os.Stderr, "soak: unknown -mode %q\n", m)
			return 2
		}
		switch {
		case err != nil:
			fmt.Fprintf(os.Stderr, "soak: %s: %v\n", m, err)
			return 2
		case !ok:
			status = 1
		}
		if ctx.Err() != nil {
			return 2
		}
	}
	if status == 0 {
		fmt.Println("\nsoak: PASS: every figure reached a plateau and came back after the load")
	} else {
		fmt.Println("\nsoak: FAIL: see GROWS / NOT BACK above")
	}
	return status
}

func envDuration(name string, def time.Duration) time.Duration {
	if s := os.Getenv(name); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			return d
		}
		fmt.Fprintf(os.Stderr, "soak: %s=%q is not a duration; using %v\n", name, s, def)
	}
	return def
}

// phases runs the load for o.duration while rec samples, then lets the
// figures settle, and prints the report. load must return when its
// context is done.
func phases(ctx context.Context, o options, title string, rec *recorder, load func(context.Context)) bool {
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	log := os.Stdout
	if !o.verbose {
		log, _ = os.Open(os.DevNull)
	}
	go func() {
		defer close(sampled)
		rec.sampleEvery(o.interval, stopSampling, log)
	}()
	lctx, cancel := context.WithTimeout(ctx, o.duration)
	load(lctx)
	cancel()
	close(stopSampling)
	<-sampled
	if ctx.Err() == nil {
		fmt.Printf("soak: %s: load done; waiting up to %v for the figures to settle\n", title, o.settle)
		rec.settle(o.interval, o.settle)
	}
	return rec.report(os.Stdout, title, o.warmup)
}

// pacer hands out o.rate tokens a second to the workers.
func pacer(ctx context.Context, rate int) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		t := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			select {
			case ch <- struct{}{}:
			case <-ctx.Done():
				return
			default: // every worker busy: drop the tick, do not queue
			}
		}
	}()
	return ch
}
