-- A random, permanent identity for the workspace (issue 12): audit anchors name the workspace they were taken
-- on, and actors issued by sign-in are sealed for one workspace. Copies of the file keep the id.
INSERT INTO workspace_meta(key, value)
SELECT 'workspace_id', to_json(CAST(gen_random_uuid() AS VARCHAR))
WHERE NOT EXISTS (SELECT 1 FROM workspace_meta WHERE key = 'workspace_id');
