package simulate

// eventKind says what happens when an event fires.
type eventKind uint8

const (
	evTaskStart eventKind = iota // a developer starts their next task
	evSend                       // a call (or its retry) is sent
	evDone                       // a call's response is complete
	evThrottled                  // a call's 429 reaches the client
	evStep                       // the think time after a step is over
	evWake                       // the gateway's queue may have news
	evSample                     // record the quota drain for the charts
)

// event is one entry of the simulation's agenda. at is nanoseconds since
// the start of the day; seq breaks ties in insertion order, which keeps a
// run deterministic.
type event struct {
	at   int64
	seq  uint64
	kind eventKind
	dev  *developer
	call *call
	task *task
}

// agenda is a binary min-heap of events by (at, seq). It is written out
// rather than built on container/heap to avoid boxing every event in an
// interface: the 50-developer day pushes millions of them.
type agenda struct {
	ev  []event
	seq uint64
}

func (a *agenda) len() int { return len(a.ev) }

func (a *agenda) push(e event) {
	a.seq++
	e.seq = a.seq
	a.ev = append(a.ev, e)
	i := len(a.ev) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !a.less(i, p) {
			break
		}
		a.ev[i], a.ev[p] = a.ev[p], a.ev[i]
		i = p
	}
}

func (a *agenda) pop() event {
	top := a.ev[0]
	n := len(a.ev) - 1
	a.ev[0] = a.ev[n]
	a.ev[n] = event{}
	a.ev = a.ev[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && a.less(r, l) {
			m = r
		}
		if !a.less(m, i) {
			break
		}
		a.ev[i], a.ev[m] = a.ev[m], a.ev[i]
		i = m
	}
	return top
}

func (a *agenda) less(i, j int) bool {
	x, y := &a.ev[i], &a.ev[j]
	if x.at != y.at {
		return x.at < y.at
	}
	return x.seq < y.seq
}
