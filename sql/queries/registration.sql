-- name: ApplyVoters :one
-- Registers the batch's voters; a voter registers once (the first event
-- wins) and only new registrations are counted into their region.
WITH input AS (
    SELECT unnest(@ords::integer[])               AS ord,
           unnest(@voter_ids::text[])             AS voter_id,
           unnest(@genders::text[])               AS gender,
           unnest(@birth_dates::date[])           AS birth_date,
           unnest(@regions::text[])               AS region,
           unnest(@cities::text[])                AS city,
           unnest(@registered_ats::timestamptz[]) AS registered_at
),
inserted AS (
    INSERT INTO voters (voter_id, gender, birth_date, region, city, registered_at)
    SELECT i.voter_id, i.gender, i.birth_date, i.region, i.city, i.registered_at
    FROM input i
    ORDER BY i.ord
    ON CONFLICT (voter_id) DO NOTHING
    RETURNING region
),
counted AS (
    INSERT INTO regions AS t (region, registered_voters)
    SELECT n.region, count(*) FROM inserted n GROUP BY n.region ORDER BY n.region
    ON CONFLICT (region) DO UPDATE SET registered_voters = t.registered_voters + excluded.registered_voters
)
SELECT count(*)::bigint AS registered FROM inserted;

-- name: ApplyCandidates :exec
-- Registers or updates the batch's candidates; the latest event for a
-- candidate wins, so a corrected biography replaces the old one.
INSERT INTO candidates AS t (candidate_id, name, party, biography, platform, photo_url)
SELECT DISTINCT ON (i.candidate_id) i.candidate_id, i.name, i.party, i.biography, i.platform, i.photo_url
FROM (
    SELECT unnest(@ords::integer[])          AS ord,
           unnest(@candidate_ids::text[])    AS candidate_id,
           unnest(@names::text[])            AS name,
           unnest(@parties::text[])          AS party,
           unnest(@biographies::text[])      AS biography,
           unnest(@platforms::text[])        AS platform,
           unnest(@photo_urls::text[])       AS photo_url
) i
ORDER BY i.candidate_id, i.ord DESC
ON CONFLICT (candidate_id) DO UPDATE
SET name = excluded.name, party = excluded.party, biography = excluded.biography,
    platform = excluded.platform, photo_url = excluded.photo_url;
