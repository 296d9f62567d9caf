-- name: systems_summary
-- description: Each system with its decision count, time span, distinct principals and model versions.
-- params: (none)
SELECT system_id, count(*) AS decisions, min(ts) AS first, max(ts) AS last,
       count(DISTINCT principal) AS principals,
       list(DISTINCT model_version ORDER BY model_version) AS versions
FROM decisions
GROUP BY system_id
ORDER BY system_id
