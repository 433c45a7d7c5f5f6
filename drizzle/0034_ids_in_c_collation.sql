-- Instance ids, step keys and task and workflow names compare byte by byte (the "C" collation),
-- whatever the database's own collation is. They are the keys of every hot-path index and join:
-- in a database created with a locale collation (en_US.UTF-8, as most servers and hosted services
-- are), each B-tree step on them called the locale's comparison, and the job path cost about twice
-- its server time (PostgreSQL 15, npm run bench:sql: bulk enqueue 28.5 -> 14.0 us per job, drain
-- with separate claims 68-73 -> 41 us, the same as in a "C" database). Equality is the same in both;
-- only the order of ids changes, and every sort that orders locks sorts in "C" (see the lock order
-- in drizzle/functions/README.md). Columns compared with one another change together, so that a
-- join is always between columns of one collation and can use their indexes. The table rows are
-- not rewritten, but the indexes on these columns are rebuilt under an exclusive lock: on a large
-- database, run it while the workers are stopped. The view over tasks is dropped and made again
-- around the change.
DROP VIEW baton.claims;
--> statement-breakpoint
ALTER TABLE baton.workflows
  ALTER COLUMN id TYPE text COLLATE "C",
  ALTER COLUMN name TYPE text COLLATE "C",
  ALTER COLUMN parent_id TYPE text COLLATE "C",
  ALTER COLUMN parent_key TYPE text COLLATE "C";
--> statement-breakpoint
ALTER TABLE baton.tasks
  ALTER COLUMN workflow_id TYPE text COLLATE "C",
  ALTER COLUMN task_key TYPE text COLLATE "C",
  ALTER COLUMN name TYPE text COLLATE "C";
--> statement-breakpoint
ALTER TABLE baton.history ALTER COLUMN workflow_id TYPE text COLLATE "C";
--> statement-breakpoint
ALTER TABLE baton.events
  ALTER COLUMN workflow_id TYPE text COLLATE "C",
  ALTER COLUMN name TYPE text COLLATE "C",
  ALTER COLUMN held_workflow_id TYPE text COLLATE "C",
  ALTER COLUMN held_key TYPE text COLLATE "C";
--> statement-breakpoint
ALTER TABLE baton.signals ALTER COLUMN workflow_id TYPE text COLLATE "C";
--> statement-breakpoint
ALTER TABLE baton.stream_frames
  ALTER COLUMN workflow_id TYPE text COLLATE "C",
  ALTER COLUMN task_key TYPE text COLLATE "C";
--> statement-breakpoint
ALTER TABLE baton.waitpoint_uses ALTER COLUMN workflow_id TYPE text COLLATE "C";
--> statement-breakpoint
ALTER TABLE baton.task_limits ALTER COLUMN name TYPE text COLLATE "C";
--> statement-breakpoint
ALTER TABLE baton.rate_log ALTER COLUMN name TYPE text COLLATE "C";
--> statement-breakpoint
ALTER TABLE baton.definitions ALTER COLUMN name TYPE text COLLATE "C";
--> statement-breakpoint
CREATE VIEW "baton"."claims" AS (select "workflow_id", "task_key", "claimed_by" as "worker_id", "epoch", "claimed_at", "lease_expires_at" as "expires_at" from "baton"."tasks" where "baton"."tasks"."status" = 'running');
