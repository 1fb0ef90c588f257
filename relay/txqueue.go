package relay

import (
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// txQueue wraps the link toward the namespace so that large outbound
// packets are written to it by a goroutine of its own, while the
// goroutine that produced them (the relay copying host-to-namespace
// bytes, which runs gVisor's sender inline) goes back to reading the host
// socket. Writing a 64 KiB TSO segment to the TUN device also runs the
// namespace kernel's receive path in that write(2), a quarter of the
// relay goroutine's time in a download profile; queued, the two overlap.
//
// A lone small packet (an ACK, a 1-byte request's reply) is still written
// inline when nothing is queued or being written, so that round trips do
// not pay a goroutine hand-off (a queue for everything, gVisor's fifo
// qdisc, added 3-8 µs to the mean 1-byte round trip). Packets never
// overtake each other: whatever finds the queue busy joins its tail.
type txQueue struct {
	nested.Endpoint

	mu      sync.Mutex
	cond    sync.Cond              // signalled on mu when queue grows, busy clears or the loop must stop
	queue   []*gstack.PacketBuffer // guarded by mu; each holds a reference
	busy    bool                   // guarded by mu: a write to the lower endpoint is in progress
	running bool                   // guarded by mu: the write loop runs
	stop    bool                   // guarded by mu: the write loop must drop the queue and return
	wg      sync.WaitGroup         // the write loop
}

const (
	// txQueueMax bounds the queued packets; beyond it packets are
	// dropped as a full device queue drops them (TCP's send buffer,
	// 4 MiB at most, keeps far below it).
	txQueueMax = 1024
	// txBatch is the most packets handed to the lower endpoint at once.
	txBatch = 64
	// txInlineMax: a lone packet up to this size may be written inline.
	txInlineMax = 2048
)

var _ gstack.LinkEndpoint = (*txQueue)(nil)

func newTxQueue(lower gstack.LinkEndpoint) *txQueue {
	q := &txQueue{}
	q.cond.L = &q.mu
	q.Endpoint.Init(lower, q)
	return q
}

// Attach implements stack.LinkEndpoint: it starts the write loop with the
// first dispatcher and stops it (dropping what is queued) on nil, which
// the stack passes when it removes the NIC.
func (q *txQueue) Attach(d gstack.NetworkDispatcher) {
	if d == nil {
		q.shutdown()
		q.Endpoint.Attach(nil)
		return
	}
	q.Endpoint.Attach(d)
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.running && !q.stop {
		q.running = true
		q.wg.Add(1)
		go q.loop()
	}
}

// Close implements stack.LinkEndpoint.
func (q *txQueue) Close() {
	q.shutdown()
	q.Endpoint.Close()
}

func (q *txQueue) shutdown() {
	q.mu.Lock()
	q.stop = true
	q.cond.Broadcast()
	q.mu.Unlock()
	q.wg.Wait()
}

// WritePackets implements stack.LinkEndpoint.
func (q *txQueue) WritePackets(pkts gstack.PacketBufferList) (int, tcpip.Error) {
	q.mu.Lock()
	if q.stop {
		q.mu.Unlock()
		return 0, &tcpip.ErrClosedForSend{}
	}
	if !q.busy && len(q.queue) == 0 && (!q.running || inlineable(pkts)) {
		q.busy = true
		q.mu.Unlock()
		n, err := q.Endpoint.WritePackets(pkts)
		q.mu.Lock()
		q.busy = false
		q.cond.Broadcast()
		q.mu.Unlock()
		return n, err
	}
	n := 0
	for _, p := range pkts.AsSlice() {
		if len(q.queue) >= txQueueMax {
			break
		}
		q.queue = append(q.queue, p.IncRef())
		n++
	}
	q.cond.Broadcast()
	q.mu.Unlock()
	if n < pkts.Len() {
		return n, &tcpip.ErrNoBufferSpace{}
	}
	return n, nil
}

// inlineable reports whether pkts is one small packet. Its GSO type does
// not matter: gVisor marks every packet of a connection over a GSO link
// (pure ACKs too) with the connection's GSO type, and a packet this small
// is never segmented anyway. (Requiring GSONone here sent every ACK of an
// upload through the write loop: 7% of ustack's CPU in an upload
// profile.)
func inlineable(pkts gstack.PacketBufferList) bool {
	return pkts.Len() == 1 && pkts.AsSlice()[0].Size() <= txInlineMax
}

// loop writes queued packets in order, one batch at a time, until stop.
func (q *txQueue) loop() {
	defer q.wg.Done()
	var taken []*gstack.PacketBuffer
	q.mu.Lock()
	for {
		for !q.stop && (len(q.queue) == 0 || q.busy) {
			q.cond.Wait()
		}
		if q.stop {
			for _, p := range q.queue {
				p.DecRef()
			}
			q.queue = nil
			q.running = false
			q.mu.Unlock()
			return
		}
		n := min(len(q.queue), txBatch)
		taken = append(taken[:0], q.queue[:n]...)
		q.queue = append(q.queue[:0], q.queue[n:]...)
		q.busy = true
		q.mu.Unlock()
		q.write(taken)
		q.mu.Lock()
		q.busy = false
		q.cond.Broadcast()
	}
}

// write hands pkts to the lower endpoint and drops the queue's references.
// The list is built afresh each time: the lower endpoint may clear it.
func (q *txQueue) write(pkts []*gstack.PacketBuffer) {
	var l gstack.PacketBufferList
	for _, p := range pkts {
		l.PushBack(p)
	}
	q.Endpoint.WritePackets(l)
	for i, p := range pkts {
		p.DecRef()
		pkts[i] = nil
	}
}
