//go:build ustack_gvisor_wndfix

package stack

// gvisorWindowFix: see gvisor_nofix_test.go.
const gvisorWindowFix = true
