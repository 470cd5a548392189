package bedrock

import "testing"

func TestTierLabel(t *testing.T) {
	for in, want := range map[string]string{
		"": TierNone, "Reserved": TierReserved, "priority": TierPriority, "STANDARD": TierStandard, "Flex": TierFlex,
		"default": TierOther, "flex ": TierOther, "x": TierOther, string(make([]byte, 4096)): TierOther,
	} {
		if got := TierLabel(in); got != want {
			t.Errorf("TierLabel(%.20q) = %q, want %q", in, got, want)
		}
	}
}
