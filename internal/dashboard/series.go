package dashboard

// series keeps the buckets' state over time in two rings of fixed size:
// the last hour at the sampling step and the last day a point a minute,
// so memory stays bounded however long serve runs: (1,800 + 1,440) points
// of five int64s, about 130 KB per bucket.

// Fields of a bucket's point, in order.
const (
	fLimit = iota
	fEffective
	fUsed
	fReserved
	fQueued // requests waiting for the bucket
	nFields
)

// point is every series' values at one instant.
type point struct {
	seq int64 // 1, 2, ... in the order points were added
	t   int64 // Unix milliseconds
	v   []int64
}

// ring holds the last len(buf) points.
type ring struct {
	buf  []point
	next int // where the next point goes
	n    int // points held
	seq  int64
}

func newRing(size int) *ring { return &ring{buf: make([]point, size)} }

func (r *ring) add(t int64, v []int64) {
	r.seq++
	r.buf[r.next] = point{seq: r.seq, t: t, v: v}
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
}

// since returns the points after seq, oldest first, and whether they are
// all of them since seq (false when seq is older than the ring holds, or
// from a ring that has restarted: the caller must start afresh).
func (r *ring) since(seq int64) ([]point, bool) {
	first := r.seq - int64(r.n) + 1
	whole := seq >= first-1 && seq <= r.seq
	if !whole {
		seq = first - 1
	}
	k := int(r.seq - seq)
	out := make([]point, 0, k)
	for i := r.n - k; i < r.n; i++ {
		out = append(out, r.at(i))
	}
	return out, whole
}

// at is the i-th point held, oldest first.
func (r *ring) at(i int) point {
	return r.buf[(r.next-r.n+i+len(r.buf))%len(r.buf)]
}

// minute folds the points of one minute into one for the day ring: the
// most used, reserved and queued, the least effective capacity, the last
// limit, so that a short peak or a throttle stays visible.
type minute struct {
	start int64 // Unix minute
	v     []int64
	have  bool
}

func (m *minute) fold(v []int64) {
	if !m.have || len(m.v) != len(v) {
		m.v, m.have = append([]int64(nil), v...), true
		return
	}
	for i, x := range v {
		switch i % nFields {
		case fEffective:
			m.v[i] = min(m.v[i], x)
		case fLimit:
			m.v[i] = x
		default:
			m.v[i] = max(m.v[i], x)
		}
	}
}
