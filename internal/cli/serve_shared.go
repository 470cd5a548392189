package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/headroomhq/headroom/internal/admission"
	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/gateway"
	"github.com/headroomhq/headroom/internal/metrics"
	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/store/redisstore"
)

// sharedLedgers is every upstream's ledger shared with the other replicas
// in Redis (README, "Replicas on Redis"), and the client they use.
type sharedLedgers struct {
	rdb    *redis.Client
	ledger []*redisstore.Shared
	ups    []*gateway.Upstream
}

// shareLedgers makes the controller of every upstream hold what it admits
// in the Redis of st as well, when st is a Redis store; nil otherwise.
// The ledger has a client of its own with short timeouts: a Redis that
// stops answering must turn into a quick refusal, not a stalled request.
func shareLedgers(st stateStore, cfg config.Serve, ups []*gateway.Upstream, logger *slog.Logger) (*sharedLedgers, error) {
	rs, ok := st.(*redisstore.Store)
	if !ok {
		return nil, nil
	}
	w, err := quota.ParseWindows(cfg.Windows.Minute, cfg.Windows.Day, cfg.Windows.DayResetHourUTC)
	if err != nil {
		return nil, err
	}
	o := *rs.Client().Options()
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 500*time.Millisecond, time.Second, time.Second
	o.MaxRetries, o.ContextTimeoutEnabled = 0, true
	s := &sharedLedgers{rdb: redis.NewClient(&o), ups: ups}
	replica := replicaName()
	logger.Info("sharing the quota ledger with the other replicas in Redis", "replica", replica, "when_down", cfg.Redis.WhenDown)
	var keyShares *redisstore.KeyShares // read only by a local share
	if cfg.Redis.LocalShare() {
		keyShares = &redisstore.KeyShares{} // a key's budget counts across upstreams
	}
	for _, u := range ups {
		l := u.Ledger()
		specs := make([]quota.BucketSpec, l.Len())
		for i := range specs {
			specs[i] = l.Spec(i)
		}
		sl, err := redisstore.NewLedger(s.rdb, specs, w, redisstore.LedgerOptions{Upstream: u.Name, Replica: replica, Prefix: rs.Prefix()})
		if err != nil {
			s.rdb.Close()
			return nil, err
		}
		sh := redisstore.NewShared(sl, l, redisstore.SharedOptions{Log: logger,
			LocalShare: cfg.Redis.LocalShare(), Replicas: cfg.Redis.Replicas, Keys: keyShares})
		u.Admission.ShareWith(sh)
		s.ledger = append(s.ledger, sh)
	}
	return s, nil
}

// run beats, settles and recovers every shared ledger until ctx ends,
// then sends what is pending and closes the client.
func (s *sharedLedgers) run(ctx context.Context) {
	if s == nil {
		return
	}
	done := make(chan struct{}, len(s.ledger))
	for i, sh := range s.ledger {
		go func() { sh.Run(ctx, s.ups[i].Admission); done <- struct{}{} }()
	}
	for range s.ledger {
		<-done
	}
	s.rdb.Close()
}

// metrics is every shared ledger's state, for /metrics.
func (s *sharedLedgers) metrics() []metrics.SharedLedger {
	out := make([]metrics.SharedLedger, len(s.ledger))
	for i, sh := range s.ledger {
		st := sh.State()
		out[i] = metrics.SharedLedger{Upstream: s.ups[i].Name, Up: st.Mode == admission.SharedUp, Share: st.Share, Replicas: st.Replicas}
	}
	return out
}

// replicaName is new at every start and unique among replicas: the
// shared ledger settles the holds of a replica that stops beating.
func replicaName() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// usageShareEvery is how often replicas on Redis pool their usage counts
// (gateway.Gateway.ShareUsage): the top consumers and forecasts of one
// show the others' settlements within about this much.
const usageShareEvery = time.Second

// usageShare is the pool of usage counts of replicas on Redis (nil with
// the data directory's store).
func usageShare(st stateStore) gateway.UsageShare {
	if rs, ok := st.(*redisstore.Store); ok {
		return rs
	}
	return nil
}
