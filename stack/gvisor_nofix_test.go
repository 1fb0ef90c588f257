//go:build !ustack_gvisor_wndfix

package stack

// gvisorWindowFix says whether the gVisor built against rounds a receive
// window it cannot shrink up to the window-scale unit (docs/stall.md). The
// pinned release does not; build with -tags ustack_gvisor_wndfix against a
// gVisor carrying the fix.
const gvisorWindowFix = false
