package main

import (
	"fmt"
	"testing"
)

func TestProcsPolicy(t *testing.T) {
	for _, tc := range []struct {
		busy  []int    // busy flows per tick
		conns []uint64 // new connections per tick (nil: none)
		want  []int    // GOMAXPROCS after each tick
	}{
		{busy: []int{0, 1, 1, 0}, want: []int{1, 1, 1, 1}},                         // one flow: stays at 1
		{busy: []int{2, 1, 1, 1, 1, 1}, want: []int{2, 2, 2, 2, 1, 1}},             // back to 1 after procsCalmTicks
		{busy: []int{3, 1, 1, 4, 1, 1, 1, 1}, want: []int{2, 2, 2, 2, 2, 2, 2, 1}}, // a busy tick restarts the count
		{busy: []int{0, 0, 1}, conns: []uint64{49, 50, 0}, want: []int{1, 2, 2}},   // a burst of connections
		{busy: []int{0, 0, 0, 0, 0}, conns: []uint64{50, 10, 10, 10, 10}, want: []int{2, 2, 2, 2, 1}},
	} {
		t.Run(fmt.Sprint(tc.busy, tc.conns), func(t *testing.T) {
			p := procsPolicy{max: 2, cur: 1}
			for i, b := range tc.busy {
				var c uint64
				if tc.conns != nil {
					c = tc.conns[i]
				}
				if got := p.next(b, c); got != tc.want[i] {
					t.Fatalf("tick %d: next(%d, %d) = %d, want %d", i, b, c, got, tc.want[i])
				}
			}
		})
	}
}
