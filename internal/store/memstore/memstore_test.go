package memstore_test

import (
	"testing"

	"github.com/headroomhq/headroom/internal/keys"
	"github.com/headroomhq/headroom/internal/keys/keystest"
	"github.com/headroomhq/headroom/internal/quota"
	"github.com/headroomhq/headroom/internal/store/memstore"
	"github.com/headroomhq/headroom/internal/store/usagetest"
)

func TestKeysConformance(t *testing.T) {
	keystest.Run(t, func(t *testing.T) keys.Store { return memstore.New() })
}

func TestUsageConformance(t *testing.T) {
	usagetest.Run(t, func(t *testing.T) quota.Store { return memstore.New() })
}
