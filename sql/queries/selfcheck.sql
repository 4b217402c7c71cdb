-- name: CheckProjection :many
-- The projection's self-check (votewatch verify): every check names what
-- must hold, whether it does, and how far off it is. No rebuild needed.
SELECT 'votes cast equals the number of ballots'::text AS check_name,
       (SELECT coalesce(sum(votes), 0) FROM candidate_tallies_summed) = (SELECT count(*) FROM ballots) AS ok,
       format('candidate tallies sum to %s, ballots %s',
              (SELECT coalesce(sum(votes), 0) FROM candidate_tallies_summed), (SELECT count(*) FROM ballots))::text AS detail
UNION ALL
SELECT 'each candidate''s total equals the sum over regions',
       NOT EXISTS (SELECT 1 FROM candidate_tallies_summed t
                   WHERE t.votes <> coalesce((SELECT sum(r.votes) FROM region_tallies_summed r WHERE r.candidate_id = t.candidate_id), 0)),
       coalesce((SELECT string_agg(format('%s: %s vs %s over regions', t.candidate_id, t.votes, coalesce(s.v, 0)), '; ')
                 FROM candidate_tallies_summed t LEFT JOIN (SELECT candidate_id, sum(votes) v FROM region_tallies_summed GROUP BY candidate_id) s
                 ON s.candidate_id = t.candidate_id WHERE t.votes <> coalesce(s.v, 0)), '')
UNION ALL
SELECT 'each contest''s candidate totals equal its ballots (a ballot names no candidate: audit recounts each candidate from the log)',
       NOT EXISTS (SELECT 1 FROM (SELECT c.contest_id, sum(t.votes) v FROM candidate_tallies_summed t
                                  JOIN candidates c ON c.candidate_id = t.candidate_id GROUP BY c.contest_id) t
                   FULL JOIN (SELECT contest_id, count(*) n FROM ballots GROUP BY contest_id) b ON b.contest_id = t.contest_id
                   WHERE coalesce(t.v, 0) <> coalesce(b.n, 0)),
       coalesce((SELECT string_agg(format('%s: tallies %s, ballots %s', coalesce(t.contest_id, b.contest_id), coalesce(t.v, 0), coalesce(b.n, 0)), '; ')
                 FROM (SELECT c.contest_id, sum(t.votes) v FROM candidate_tallies_summed t
                       JOIN candidates c ON c.candidate_id = t.candidate_id GROUP BY c.contest_id) t
                 FULL JOIN (SELECT contest_id, count(*) n FROM ballots GROUP BY contest_id) b ON b.contest_id = t.contest_id
                 WHERE coalesce(t.v, 0) <> coalesce(b.n, 0)), '')
UNION ALL
SELECT 'each region''s votes cast equals its tallies and its ballots (default contest)',
       NOT EXISTS (SELECT 1 FROM regions_summed g
                   LEFT JOIN (SELECT rt.region, sum(rt.votes) v FROM region_tallies_summed rt JOIN candidates c ON c.candidate_id = rt.candidate_id
                              WHERE c.contest_id = 'default' GROUP BY rt.region) t ON t.region = g.region
                   LEFT JOIN (SELECT region, count(*) n FROM ballots WHERE contest_id = 'default' GROUP BY region) b ON b.region = g.region
                   WHERE g.votes_cast <> coalesce(t.v, 0) OR g.votes_cast <> coalesce(b.n, 0)),
       coalesce((SELECT string_agg(format('%s: votes_cast %s, tallies %s, ballots %s', g.region, g.votes_cast, coalesce(t.v, 0), coalesce(b.n, 0)), '; ')
                 FROM regions_summed g
                 LEFT JOIN (SELECT rt.region, sum(rt.votes) v FROM region_tallies_summed rt JOIN candidates c ON c.candidate_id = rt.candidate_id
                            WHERE c.contest_id = 'default' GROUP BY rt.region) t ON t.region = g.region
                 LEFT JOIN (SELECT region, count(*) n FROM ballots WHERE contest_id = 'default' GROUP BY region) b ON b.region = g.region
                 WHERE g.votes_cast <> coalesce(t.v, 0) OR g.votes_cast <> coalesce(b.n, 0)), '')
UNION ALL
SELECT 'each contest''s turnout equals its ballots, region by region',
       NOT EXISTS (SELECT 1 FROM contest_turnout_summed ct
                   FULL JOIN (SELECT contest_id, region, count(*) n FROM ballots GROUP BY contest_id, region) b
                   ON b.contest_id = ct.contest_id AND b.region = ct.region
                   WHERE coalesce(ct.votes_cast, 0) <> coalesce(b.n, 0)),
       coalesce((SELECT string_agg(format('%s/%s: turnout %s, ballots %s', coalesce(ct.contest_id, b.contest_id), coalesce(ct.region, b.region), coalesce(ct.votes_cast, 0), coalesce(b.n, 0)), '; ')
                 FROM contest_turnout_summed ct
                 FULL JOIN (SELECT contest_id, region, count(*) n FROM ballots GROUP BY contest_id, region) b
                 ON b.contest_id = ct.contest_id AND b.region = ct.region
                 WHERE coalesce(ct.votes_cast, 0) <> coalesce(b.n, 0)), '')
UNION ALL
SELECT 'each region''s registered voters equals its register',
       NOT EXISTS (SELECT 1 FROM regions_summed g LEFT JOIN (SELECT region, count(*) n FROM voters GROUP BY region) v ON v.region = g.region
                   WHERE g.registered_voters <> coalesce(v.n, 0)),
       coalesce((SELECT string_agg(format('%s: %s registered, register holds %s', g.region, g.registered_voters, coalesce(v.n, 0)), '; ')
                 FROM regions_summed g LEFT JOIN (SELECT region, count(*) n FROM voters GROUP BY region) v ON v.region = g.region
                 WHERE g.registered_voters <> coalesce(v.n, 0)), '')
UNION ALL
SELECT 'turnout never exceeds 100%',
       NOT EXISTS (SELECT 1 FROM regions_summed WHERE votes_cast > registered_voters),
       coalesce((SELECT string_agg(format('%s: %s votes, %s registered', region, votes_cast, registered_voters), '; ')
                 FROM regions_summed WHERE votes_cast > registered_voters), '')
UNION ALL
SELECT 'every tally row refers to a known candidate and region',
       NOT EXISTS (SELECT 1 FROM region_tallies_summed t WHERE NOT EXISTS (SELECT 1 FROM candidates c WHERE c.candidate_id = t.candidate_id)
                                                  OR NOT EXISTS (SELECT 1 FROM regions_summed g WHERE g.region = t.region))
       AND NOT EXISTS (SELECT 1 FROM candidate_tallies_summed t WHERE NOT EXISTS (SELECT 1 FROM candidates c WHERE c.candidate_id = t.candidate_id)),
       coalesce((SELECT string_agg(format('%s/%s', t.region, t.candidate_id), '; ') FROM region_tallies_summed t
                 WHERE NOT EXISTS (SELECT 1 FROM candidates c WHERE c.candidate_id = t.candidate_id)
                    OR NOT EXISTS (SELECT 1 FROM regions_summed g WHERE g.region = t.region)), '')
UNION ALL
SELECT 'rejection counts equal the rejections recorded',
       NOT EXISTS (SELECT 1 FROM rejection_tallies_summed t FULL JOIN (SELECT contest_id, reason, count(*) n FROM rejections GROUP BY contest_id, reason) r
                   ON r.reason = t.reason AND r.contest_id = t.contest_id
                   WHERE coalesce(t.count, 0) <> coalesce(r.n, 0)),
       coalesce((SELECT string_agg(format('%s/%s: counted %s, recorded %s', coalesce(t.contest_id, r.contest_id), coalesce(t.reason, r.reason), coalesce(t.count, 0), coalesce(r.n, 0)), '; ')
                 FROM rejection_tallies_summed t FULL JOIN (SELECT contest_id, reason, count(*) n FROM rejections GROUP BY contest_id, reason) r
                 ON r.reason = t.reason AND r.contest_id = t.contest_id
                 WHERE coalesce(t.count, 0) <> coalesce(r.n, 0)), '')
UNION ALL
SELECT 'the timeline and the breakdowns each sum to the ballots',
       (SELECT coalesce(sum(votes), 0) FROM timeline_summed) = (SELECT count(*) FROM ballots)
       AND NOT EXISTS (SELECT 1 FROM (SELECT dimension, sum(votes) s FROM demographic_tallies_summed GROUP BY dimension) d
                       WHERE d.s <> (SELECT count(*) FROM ballots)),
       format('timeline %s, breakdowns %s, ballots %s', (SELECT coalesce(sum(votes), 0) FROM timeline_summed),
              coalesce((SELECT string_agg(format('%s %s', dimension, s), ', ') FROM (SELECT dimension, sum(votes) s FROM demographic_tallies_summed GROUP BY dimension) d), 'none'),
              (SELECT count(*) FROM ballots))
UNION ALL
SELECT 'no voter has a ballot and a rejection for the same vote',
       NOT EXISTS (SELECT 1 FROM ballots b JOIN rejections r ON r.vote_id = b.vote_id AND r.voter_id = b.voter_id),
       coalesce((SELECT count(*)::text || ' votes both counted and rejected' FROM ballots b JOIN rejections r ON r.vote_id = b.vote_id AND r.voter_id = b.voter_id
                 HAVING count(*) > 0), '')
UNION ALL
SELECT 'no held vote is also decided',
       NOT EXISTS (SELECT 1 FROM held_votes h WHERE EXISTS (SELECT 1 FROM rejections r WHERE r.vote_id = h.vote_id)
                                              OR EXISTS (SELECT 1 FROM ballots b WHERE b.vote_id = h.vote_id AND b.voter_id = h.voter_id)),
       coalesce((SELECT count(*)::text || ' held votes were also decided' FROM held_votes h
                 WHERE EXISTS (SELECT 1 FROM rejections r WHERE r.vote_id = h.vote_id)
                    OR EXISTS (SELECT 1 FROM ballots b WHERE b.vote_id = h.vote_id AND b.voter_id = h.voter_id)
                 HAVING count(*) > 0), '')
UNION ALL
SELECT 'votes are held only while registration is open (a held vote''s candidate is sealed in its message: audit decides it from the log)',
       NOT EXISTS (SELECT 1 FROM held_votes h
                   WHERE (SELECT coalesce(count(*) = 3 AND bool_and(
                                    (SELECT count(*) FROM registration_closures rc WHERE rc.topic = d.topic AND rc.partition < d.n) = d.n), false)
                          FROM (SELECT topic, max(partitions) AS n FROM registration_closures GROUP BY topic) d)),
       coalesce((SELECT count(*)::text || ' votes held after registration closed' FROM held_votes h
                 HAVING count(*) > 0), '');

-- name: ProjectionTables :many
-- The tables of the projection's schema (the session's search_path), for
-- the self-check that every one is in the registry (projections.Tables).
-- pg_class, not information_schema: a reader sees every table's name.
SELECT c.relname::text AS name
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY 1;
