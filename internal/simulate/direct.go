package simulate

import (
	"errors"
	"fmt"
	"time"

	"github.com/headroomhq/headroom/internal/config"
	"github.com/headroomhq/headroom/internal/emulator"
)

// upstreamCall is an attempt admitted by Bedrock: the emulator's hold on
// the account's buckets, settled when the answer is complete.
type upstreamCall = *emulator.Reservation

// newBedrock builds one emulated account with the scenario's quota, every
// window starting at now. It plays Bedrock: the simulation keeps no quota
// arithmetic of its own.
func newBedrock(sc *Scenario, now time.Time) (*emulator.Account, error) {
	cfg := emulatorConfig(sc)
	a, err := emulator.NewAccount(cfg, now)
	if err != nil {
		return nil, fmt.Errorf("emulated account: %w", err)
	}
	return a, nil
}

// admit asks Bedrock to admit the attempt. It returns Bedrock's throttle,
// or nil when the attempt was admitted, and an error for anything that is
// not a throttle.
func admit(w *world, acct *emulator.Account, c *call) (*emulator.ThrottleError, error) {
	r, err := acct.Admit(w.wall(w.now), emulator.Call{Region: w.sc.Region, Model: c.m.model, Demand: c.demand()})
	if err != nil {
		var te *emulator.ThrottleError
		if errors.As(err, &te) {
			return te, nil
		}
		return nil, err
	}
	c.upstream = r
	c.reserved = r.Admission()
	return nil, nil
}

// directDoor is Claude Code calling Bedrock directly: the shared account,
// or each developer's own.
type directDoor struct {
	accounts []*emulator.Account
}

func newDirectDoor(perDeveloper bool) func(w *world) (frontDoor, error) {
	return func(w *world) (frontDoor, error) {
		n := 1
		if perDeveloper {
			n = len(w.devs)
		}
		d := &directDoor{}
		for range n {
			a, err := newBedrock(w.sc, w.base)
			if err != nil {
				return nil, err
			}
			d.accounts = append(d.accounts, a)
		}
		return d, nil
	}
}

func (d *directDoor) account(c *call) *emulator.Account {
	if len(d.accounts) == 1 {
		return d.accounts[0]
	}
	return d.accounts[c.dev.idx]
}

func (d *directDoor) send(w *world, c *call) {
	c.generateAt(c.clientAsk(w.st))
	te, err := admit(w, d.account(c), c)
	if err != nil {
		w.abort(err) // an unexpected emulator error ends the run
		return
	}
	if te != nil {
		// Bedrock's 429: no Retry-After, no x-should-retry.
		w.refuse(c, 0, false, false)
		return
	}
	w.answer(c, c.reserved)
}

func (d *directDoor) done(w *world, c *call) {
	c.upstream.Settle(w.wall(w.now), c.usage())
	c.upstream = nil
}

func (d *directDoor) wake(*world, *call) {}

// emulatorConfig is the emulator configuration of the scenario's account:
// one region with the scenario's buckets, accounting and windows.
func emulatorConfig(sc *Scenario) config.Emulator {
	cfg := config.DefaultEmulator()
	cfg.Scenario = ""
	cfg.DefaultRegion = sc.Region
	cfg.Accounting = sc.Accounting
	cfg.Windows = sc.Windows
	cfg.Regions = []config.EmulatorRegion{{Name: sc.Region, Buckets: sc.Buckets}}
	return cfg
}
