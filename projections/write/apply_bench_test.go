package write_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/write"
)

// BenchmarkApplyVotes measures one group-commit batch of the live path
// (batch sizes as in-flight partitions allow) against a real PostgreSQL:
//
//	go test -run '^$' -bench ApplyVotes ./projections
func BenchmarkApplyVotes(b *testing.B) {
	for _, size := range []int{1, 64, 256, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			pool := testutil.Pool(b)
			store, err := write.NewStore(pool)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			party, _ := domain.NewParty("P")
			var cands []projections.Envelope[domain.CandidateRegistered]
			for i := range 5 {
				c, _ := domain.NewCandidate(fmt.Sprintf("c%d", i), "N", party, "", "", "")
				cands = append(cands, projections.Envelope[domain.CandidateRegistered]{Event: domain.CandidateRegistered{Candidate: c}})
			}
			if _, err := store.ApplyCandidates(ctx, cands); err != nil {
				b.Fatal(err)
			}
			total := b.N * size
			at := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
			for start := 0; start < total; start += 5000 {
				var vs []projections.Envelope[domain.VoterRegistered]
				for i := start; i < min(start+5000, total); i++ {
					r, _ := domain.NewRegion(fmt.Sprintf("R%d", i%51))
					v, _ := domain.NewVoter(fmt.Sprintf("v%d", i), "N", "female", at.AddDate(-30-i%40, 0, 0), r, "C", at.AddDate(0, -1, 0))
					vs = append(vs, projections.Envelope[domain.VoterRegistered]{Event: domain.VoterRegistered{Voter: v},
						Position: projections.Position{Topic: domain.TopicVoters, Partition: int32(i % 64), Offset: int64(i)}})
				}
				if _, err := store.ApplyVoters(ctx, vs); err != nil {
					b.Fatal(err)
				}
			}
			batches := make([][]projections.Envelope[domain.VoteCast], b.N)
			for n := range b.N {
				for j := range size {
					i := n*size + j
					v, _ := domain.NewVote(fmt.Sprintf("00000000-0000-4000-8000-%012d", i), fmt.Sprintf("v%d", i), fmt.Sprintf("c%d", i%5), at)
					batches[n] = append(batches[n], projections.Envelope[domain.VoteCast]{Event: domain.VoteCast{Vote: v},
						Position: projections.Position{Topic: domain.TopicVotes, Partition: int32(j % 64), Offset: int64(i)}})
				}
			}
			b.ResetTimer()
			for n := range b.N {
				if _, err := store.ApplyVotes(ctx, batches[n]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "votes/s")
		})
	}
}
