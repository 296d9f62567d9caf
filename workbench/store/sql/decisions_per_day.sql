-- name: decisions_per_day
-- description: Decisions per system per UTC day, with the share that errored.
-- params: (none)
SELECT system_id, make_timestamptz((epoch_us(ts) // 86400000000) * 86400000000) AS day, count(*) AS decisions,
       avg(CASE WHEN status = 'error' THEN 1.0 ELSE 0.0 END) AS error_share
FROM decisions
GROUP BY ALL
ORDER BY day, system_id
