package keys

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// hashIn returns a hash in shard 0 numbered i.
func hashIn(i int) hashKey {
	var h hashKey
	h[0] = 0
	h[1], h[2] = byte(i), byte(i>>8)
	return h
}

// TestNegativeEvictsOldest: a full shard evicts its oldest entry; renewing
// an entry does not add a second one.
func TestNegativeEvictsOldest(t *testing.T) {
	t0 := time.Unix(1000, 0)
	n := newNegative(time.Minute, 3*negShards) // 3 per shard
	clock := func() time.Time { return t0 }
	for _, i := range []int{1, 2, 3, 1, 4} { // 1 renewed, then 4 evicts 1 (the oldest)
		n.add(hashIn(i), t0)
	}
	var got []int
	for i := 1; i <= 4; i++ {
		if n.has(hashIn(i), clock) {
			got = append(got, i)
		}
	}
	if diff := cmp.Diff([]int{2, 3, 4}, got); diff != "" {
		t.Errorf("remembered (-want +got):\n%s", diff)
	}
}

// TestNegativeBound: however many distinct unknown hashes arrive, the
// cache holds at most its size.
func TestNegativeBound(t *testing.T) {
	t0 := time.Unix(1000, 0)
	n := newNegative(DefaultNegativeTTL, DefaultNegativeSize)
	for i := range 3 * DefaultNegativeSize {
		var h hashKey
		h[0], h[1], h[2] = byte(i*7), byte(i>>8), byte(i>>16)
		n.add(h, t0)
	}
	if got := n.len(); got > DefaultNegativeSize || got < DefaultNegativeSize*9/10 {
		t.Errorf("len = %d, want at most %d and close to it", got, DefaultNegativeSize)
	}
	n.clear()
	if got := n.len(); got != 0 {
		t.Errorf("len after clear = %d, want 0", got)
	}
}

func TestNegativeOff(t *testing.T) {
	for _, n := range []*negative{newNegative(-1, 10), newNegative(time.Second, -1)} {
		n.add(hashIn(1), time.Unix(0, 0))
		if n.has(hashIn(1), func() time.Time { return time.Unix(0, 0) }) || n.len() != 0 {
			t.Error("a disabled negative cache remembered a hash")
		}
		n.clear()
	}
}

// len is the number of entries, expired ones included.
func (n *negative) len() int {
	if n == nil {
		return 0
	}
	total := 0
	for i := range n.shards {
		s := &n.shards[i]
		s.mu.Lock()
		total += len(s.expiry)
		s.mu.Unlock()
	}
	return total
}
