-- name: decision_rollup
-- description: One scan of the decisions: count, errors and time span per system, UTC day, model version and logged artifact hash, with the system's distinct principals (the Overview's views derive from it).
-- params: (none)
WITH by_principal AS MATERIALIZED (
    SELECT system_id, epoch_us(ts) // 86400000000 AS day, model_version, model_sha256, principal,
           count(*) AS decisions, count(*) FILTER (WHERE status = 'error') AS errors,
           min(ts) AS first, max(ts) AS last
    FROM decisions
    GROUP BY ALL
),
per_system AS (
    SELECT system_id, count(DISTINCT principal) AS system_principals
    FROM by_principal
    GROUP BY system_id
)
SELECT system_id, make_timestamptz(day * 86400000000) AS day, model_version, model_sha256,
       sum(decisions)::BIGINT AS decisions, sum(errors)::BIGINT AS errors, min(first) AS first, max(last) AS last,
       any_value(system_principals) AS system_principals
FROM by_principal JOIN per_system USING (system_id)
GROUP BY system_id, day, model_version, model_sha256
ORDER BY system_id, day, model_version, model_sha256
