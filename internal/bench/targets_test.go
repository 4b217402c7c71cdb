package bench

import "testing"

func TestTargetsAreIssue22sRatiosOfOneRun(t *testing.T) {
	byName := map[string]benchResult{
		"live_votes":     {PerSec: 8_000},
		"apply_ceiling":  {PerSec: 10_000},
		"copy_limit":     {PerSec: 40_000},
		"replay_command": {PerSec: 19_000},
	}
	got := (&Bench{}).targets(byName)
	want := []target{
		{Name: "live votes / apply ceiling", Ratio: 0.8, Target: 0.8, Met: true},
		{Name: "live votes / COPY limit", Ratio: 0.2, Target: 0.3, Met: false},
		{Name: "whole replay command (events/s) / COPY limit", Ratio: 0.475, Target: 0.5, Met: false},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d targets, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("target %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestATargetWhoseFiguresWereNotMeasuredIsLeftOut(t *testing.T) {
	// A run without the live phase measures neither live nor the ceiling.
	got := (&Bench{}).targets(map[string]benchResult{"copy_limit": {PerSec: 40_000}, "replay_command": {PerSec: 20_000}})
	if len(got) != 1 || got[0].Name != "whole replay command (events/s) / COPY limit" || !got[0].Met {
		t.Fatalf("got %+v, want only the whole replay's target, met", got)
	}
}
