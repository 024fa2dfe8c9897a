-- Reporting views, version 2. Each is documented and tested in
-- docs/reporting.md and store/pgstore/reports_test.go.

-- Who is online now: one row per user with the winning resource
-- (highest priority, then most recent change, then smallest name).
CREATE VIEW presence_online_now AS
SELECT DISTINCT ON (user_jid)
       user_jid,
       resource AS top_resource,
       show,
       status,
       priority,
       count(*) OVER (PARTITION BY user_jid) AS resources
FROM presence_current
ORDER BY user_jid, priority DESC, since DESC, resource;

-- Online intervals per user: the sessions of all resources merged, so a
-- user on two devices at once counts once. Open sessions end now().
CREATE VIEW presence_user_intervals AS
WITH s AS (
    SELECT user_jid, started_at, coalesce(ended_at, now()) AS ended_at
    FROM presence_sessions
), marked AS (
    SELECT *,
           CASE WHEN started_at <= max(ended_at) OVER (PARTITION BY user_jid ORDER BY started_at, ended_at
                                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                THEN 0 ELSE 1 END AS starts_island
    FROM s
), islands AS (
    SELECT *, sum(starts_island) OVER (PARTITION BY user_jid ORDER BY started_at, ended_at) AS island
    FROM marked
)
SELECT user_jid, min(started_at) AS started_at, max(ended_at) AS ended_at
FROM islands
GROUP BY user_jid, island;

-- Time online per user per UTC day.
CREATE VIEW presence_time_online_daily AS
SELECT day::date AS day, i.user_jid,
       sum(least(i.ended_at, day + interval '1 day') - greatest(i.started_at, day)) AS online
FROM presence_user_intervals i,
     generate_series(date_trunc('day', i.started_at, 'UTC'), date_trunc('day', i.ended_at, 'UTC'), interval '1 day') AS day
WHERE least(i.ended_at, day + interval '1 day') > greatest(i.started_at, day)
GROUP BY day, i.user_jid;

-- Daily active users: users online at any moment of the UTC day.
CREATE VIEW presence_daily_active_users AS
SELECT day, count(DISTINCT user_jid) AS users
FROM presence_time_online_daily
GROUP BY day;

-- Peak concurrent users per UTC hour: the most users online at once at any
-- moment of the hour (users, not resources).
CREATE VIEW presence_peak_concurrent_hourly AS
WITH edges AS (
    SELECT started_at AS at, 1 AS delta FROM presence_user_intervals
    UNION ALL
    SELECT ended_at, -1 FROM presence_user_intervals
), running AS (
    -- At equal times, ends before starts: touching intervals do not overlap.
    SELECT at, sum(delta) OVER (ORDER BY at, delta ROWS UNBOUNDED PRECEDING) AS online
    FROM edges
), hours AS (
    SELECT generate_series(date_trunc('hour', min(at), 'UTC'), date_trunc('hour', max(at), 'UTC'), interval '1 hour') AS hour
    FROM edges
)
SELECT h.hour,
       greatest(
           coalesce((SELECT r.online FROM running r WHERE r.at <= h.hour ORDER BY r.at DESC LIMIT 1), 0),
           coalesce((SELECT max(r.online) FROM running r WHERE r.at >= h.hour AND r.at < h.hour + interval '1 hour'), 0)
       ) AS peak
FROM hours h;

-- Users not seen for at least the given number of days (offline users
-- only; a user online now has been seen).
CREATE FUNCTION presence_users_not_seen(days integer)
RETURNS TABLE (user_jid text, last_seen timestamptz) LANGUAGE sql STABLE AS $$
    SELECT u.user_jid, u.last_seen
    FROM presence_users u
    WHERE NOT u.online AND u.last_seen < now() - make_interval(days => days)
    ORDER BY u.last_seen
$$;
