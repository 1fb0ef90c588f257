package main

import (
	"fmt"
	"testing"
)

func TestProcsPolicy(t *testing.T) {
	for _, tc := range []struct {
		busy []int // busy flows per tick
		want []int // GOMAXPROCS after each tick
	}{
		{[]int{0, 1, 1, 0}, []int{1, 1, 1, 1}},                         // one flow: stays at 1
		{[]int{2, 1, 1, 1, 1, 1}, []int{2, 2, 2, 2, 1, 1}},             // back to 1 after procsCalmTicks
		{[]int{3, 1, 1, 4, 1, 1, 1, 1}, []int{2, 2, 2, 2, 2, 2, 2, 1}}, // a busy tick restarts the count
	} {
		t.Run(fmt.Sprint(tc.busy), func(t *testing.T) {
			p := procsPolicy{max: 2, cur: 1}
			for i, b := range tc.busy {
				if got := p.next(b); got != tc.want[i] {
					t.Fatalf("tick %d: next(%d) = %d, want %d", i, b, got, tc.want[i])
				}
			}
		})
	}
}
