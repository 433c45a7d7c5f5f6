-- bench/model/run.sh's tables: baton.workflows and baton.tasks as Baton has them (columns, indexes that a
-- one-task job's rows enter, fillfactors), plus the claim fields a one-row job would keep on its
-- instance row (j_*, NULL and outside every index in the two-row layouts).
DROP SCHEMA IF EXISTS baton_model CASCADE;
CREATE SCHEMA baton_model;
SET search_path = baton_model;
CREATE SEQUENCE epoch_seq;
CREATE TABLE workflows (
  id text COLLATE "C" PRIMARY KEY, name text COLLATE "C" NOT NULL, definition_hash text NOT NULL, status text NOT NULL,
  input jsonb, output jsonb, error jsonb, priority int, tags text[] NOT NULL DEFAULT '{}', parent_id text COLLATE "C", parent_key text,
  state jsonb NOT NULL DEFAULT '{}', current_step text, completed_task_count int NOT NULL DEFAULT 0, version int NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz, trace_context text,
  -- a one-row job's claim fields (NULL in the two-row layouts)
  j_ready_key timestamptz, j_epoch bigint, j_claimed_by text, j_lease timestamptz, j_attempts int, j_max int, j_started timestamptz, j_status text
) WITH (fillfactor = 50);
CREATE INDEX ON workflows (created_at DESC, id DESC);
CREATE INDEX ON workflows (name, created_at DESC, id DESC);
CREATE INDEX ON workflows (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX wf_ready ON workflows (tags, j_ready_key) WHERE j_status = 'ready';
CREATE INDEX wf_lease ON workflows (j_lease) WHERE j_status = 'running';
CREATE TABLE tasks (
  workflow_id text COLLATE "C" NOT NULL, task_key text COLLATE "C" NOT NULL, kind text NOT NULL, name text COLLATE "C" NOT NULL,
  definition_hash text NOT NULL, status text NOT NULL, paused boolean NOT NULL DEFAULT false, priority int NOT NULL DEFAULT 0,
  tags text[] NOT NULL DEFAULT '{}', ready_key timestamptz, available_at timestamptz, attempts int NOT NULL DEFAULT 0,
  max_attempts int NOT NULL DEFAULT 1, lease_losses int NOT NULL DEFAULT 0, epoch bigint NOT NULL DEFAULT 0, claimed_by text,
  claimed_at timestamptz, lease_expires_at timestamptz, input jsonb, output jsonb, last_error jsonb, last_failed_worker text,
  progress real, progress_message text, created_at timestamptz NOT NULL DEFAULT now(), started_at timestamptz, finished_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(), finished_by text, limit_key text, event_key text,
  PRIMARY KEY (workflow_id, task_key));
CREATE INDEX ON tasks (tags, ready_key) WHERE status = 'ready';
CREATE INDEX ON tasks (lease_expires_at) WHERE status = 'running';
CREATE INDEX ON tasks (available_at) WHERE status = 'waiting' AND NOT paused AND available_at IS NOT NULL;

CREATE FUNCTION enqueue_two(p_n int) RETURNS int LANGUAGE sql AS $$
  WITH ids AS (SELECT gen_random_uuid()::text AS id, i FROM generate_series(1, p_n) i),
  w AS (INSERT INTO baton_model.workflows (id, name, definition_hash, status, input, state, current_step)
        SELECT id, 'noop', 'abcdef0123456789', 'running', to_jsonb(i), '{"par": {}, "done": 0}', 'noop' FROM ids RETURNING id),
  t AS (INSERT INTO baton_model.tasks (workflow_id, task_key, kind, name, definition_hash, status, ready_key, available_at, max_attempts)
        SELECT id, '0', 'task', 'noop', 'abcdef0123456789', 'ready', now(), now(), 3 FROM ids RETURNING 1)
  SELECT (SELECT count(*) FROM t)::int;
$$;
CREATE FUNCTION enqueue_one(p_n int) RETURNS int LANGUAGE sql AS $$
  WITH ids AS (SELECT gen_random_uuid()::text AS id, i FROM generate_series(1, p_n) i),
  w AS (INSERT INTO baton_model.workflows (id, name, definition_hash, status, input, state, current_step, j_ready_key, j_status, j_attempts, j_max, j_epoch)
        SELECT id, 'noop', 'abcdef0123456789', 'running', to_jsonb(i), '{"par": {}, "done": 0}', 'noop', now(), 'ready', 0, 3, 0 FROM ids RETURNING 1)
  SELECT (SELECT count(*) FROM w)::int;
$$;
-- A job of its own: one narrow row holding what a one-task job needs of its instance and its task,
-- with the ready and lease indexes and one listing index (newest first), in a table of its own.
CREATE TABLE jobs (
  id text COLLATE "C" PRIMARY KEY, name text COLLATE "C" NOT NULL, definition_hash text NOT NULL, status text NOT NULL,
  priority int NOT NULL DEFAULT 0, tags text[] NOT NULL DEFAULT '{}', ready_key timestamptz, available_at timestamptz,
  attempts int NOT NULL DEFAULT 0, max_attempts int NOT NULL DEFAULT 1, lease_losses int NOT NULL DEFAULT 0,
  epoch bigint NOT NULL DEFAULT 0, claimed_by text, lease_expires_at timestamptz,
  input jsonb, output jsonb, error jsonb, created_at timestamptz NOT NULL DEFAULT now(), started_at timestamptz,
  finished_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);
CREATE INDEX ON jobs (tags, ready_key) WHERE status = 'ready';
CREATE INDEX ON jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX ON jobs (created_at DESC, id DESC);
CREATE FUNCTION enqueue_job(p_n int) RETURNS int LANGUAGE sql AS $$
  WITH j AS (INSERT INTO baton_model.jobs (id, name, definition_hash, status, ready_key, available_at, max_attempts, input)
        SELECT gen_random_uuid()::text, 'noop', 'abcdef0123456789', 'ready', now(), now(), 3, to_jsonb(i)
        FROM generate_series(1, p_n) i RETURNING 1)
  SELECT count(*)::int FROM j;
$$;
