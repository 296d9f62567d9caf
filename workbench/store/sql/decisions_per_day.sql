-- name: decisions_per_day
-- description: Decisions per system per UTC day, with the share that errored.
-- params: (none)
SELECT system_id, date_trunc('day', ts) AS day, count(*) AS decisions,
       avg(CASE WHEN status = 'error' THEN 1.0 ELSE 0.0 END) AS error_share
FROM decisions
GROUP BY ALL
ORDER BY day, system_id
