-- name: principal_volume
-- description: Decisions per principal of one system in a time range, busiest first.
-- params: $system_id, $since, $until
SELECT principal, count(*) AS decisions, min(ts) AS first, max(ts) AS last,
       count(DISTINCT source_ip) AS addresses,
       avg(CASE WHEN status = 'error' THEN 1.0 ELSE 0.0 END) AS error_share
FROM decisions
WHERE system_id = $system_id AND ts >= $since AND ts < $until
GROUP BY principal
ORDER BY decisions DESC
