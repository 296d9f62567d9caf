-- name: metric_series
-- description: One metric of one system over a time range, averaged per bucket (seconds) across label sets.
-- params: $system_id, $metric, $since, $until, $bucket_seconds
SELECT time_bucket(to_seconds($bucket_seconds::BIGINT), ts) AS ts, avg(value) AS value, max(value) AS max_value
FROM metrics
WHERE system_id = $system_id AND metric = $metric AND ts >= $since AND ts < $until
GROUP BY 1
ORDER BY 1
