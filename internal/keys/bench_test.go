package keys_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/keys/keystest"
	"github.com/headroomhq/headroom/internal/store/memstore"
	"github.com/headroomhq/headroom/internal/store/sqlitestore"
)

// BenchmarkAuthenticateUnknown is a flood of well-formed secrets that are
// no key (misconfigured clients, 64 distinct secrets), from parallel
// goroutines, over the memory store and over SQLite as `headroom serve`
// uses it.
func BenchmarkAuthenticateUnknown(b *testing.B) {
	ctx := context.Background()
	stores := []struct {
		name string
		open func(b *testing.B) keys.Store
	}{
		{"memstore", func(b *testing.B) keys.Store { return memstore.New() }},
		{"sqlite", func(b *testing.B) keys.Store {
			st, err := sqlitestore.Open(ctx, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() })
			return st
		}},
	}
	unknown := make([]string, 64)
	for i := range unknown {
		unknown[i] = keystest.Secret(fmt.Sprintf("stranger%d", i))
	}
	for _, s := range stores {
		b.Run(s.name, func(b *testing.B) {
			st := s.open(b)
			for i := range 100 {
				if err := st.Create(ctx, keystest.Key(fmt.Sprintf("dev%d", i))); err != nil {
					b.Fatal(err)
				}
			}
			r := keys.NewRegistry(st, discard)
			if err := r.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(1)) * 7
				for pb.Next() {
					if _, err := r.Authenticate(ctx, unknown[i%len(unknown)]); !errors.Is(err, keys.ErrUnknown) {
						b.Errorf("Authenticate = %v, want ErrUnknown", err)
						return
					}
					i++
				}
			})
		})
	}
}

// BenchmarkAuthenticateGuessing is a client trying a new random secret
// every time, over SQLite as `headroom serve` uses it: the negative cache
// cannot help, the miss rate bounds the store lookups. "unbounded" turns
// the rate off, for the cost it saves.
func BenchmarkAuthenticateGuessing(b *testing.B) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		rate int
	}{{"default", 0}, {"unbounded", -1}} {
		b.Run(tt.name, func(b *testing.B) {
			st, err := sqlitestore.Open(ctx, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() })
			r := keys.NewRegistryWith(st, discard, keys.RegistryOptions{MissRate: tt.rate})
			if err := r.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
			// More distinct secrets than the negative cache holds, so a
			// secret is evicted long before it comes round again.
			guesses := make([]string, 16*keys.DefaultNegativeSize)
			for i := range guesses {
				guesses[i] = keys.NewSecret()
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				if _, err := r.Authenticate(ctx, guesses[i%len(guesses)]); !errors.Is(err, keys.ErrUnknown) {
					b.Fatalf("Authenticate = %v, want ErrUnknown", err)
				}
				i++
			}
		})
	}
}
