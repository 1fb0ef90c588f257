package main

import "testing"

func TestProcsPolicy(t *testing.T) {
	type tick struct {
		out, in int    // busy flows each way
		conns   uint64 // new connections
	}
	for _, tc := range []struct {
		name  string
		ticks []tick
		want  []int // GOMAXPROCS after each tick
	}{
		{"one upload", []tick{{0, 0, 0}, {1, 0, 0}, {1, 0, 1}, {0, 0, 0}}, []int{1, 1, 1, 1}},
		{"one download", []tick{{0, 1, 0}, {0, 0, 0}}, []int{2, 2}},
		{"a two-way flow", []tick{{1, 1, 0}}, []int{2}},
		{"back to 1 after procsCalmTicks", []tick{{2, 0, 0}, {1, 0, 0}, {1, 0, 0}, {1, 0, 0}, {1, 0, 0}, {1, 0, 0}}, []int{2, 2, 2, 2, 1, 1}},
		{"a busy tick restarts the count", []tick{{3, 0, 0}, {1, 0, 0}, {1, 0, 0}, {4, 0, 0}, {1, 0, 0}, {1, 0, 0}, {1, 0, 0}, {1, 0, 0}}, []int{2, 2, 2, 2, 2, 2, 2, 1}},
		{"a burst of connections", []tick{{0, 0, 49}, {0, 0, 50}, {1, 0, 0}}, []int{1, 2, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := procsPolicy{max: 2, cur: 1}
			for i, k := range tc.ticks {
				if got := p.next(k.out, k.in, k.conns); got != tc.want[i] {
					t.Fatalf("tick %d: next(%d, %d, %d) = %d, want %d", i, k.out, k.in, k.conns, got, tc.want[i])
				}
			}
		})
	}
}
