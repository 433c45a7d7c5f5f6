CREATE TABLE "baton"."schedules" (
	"name" text PRIMARY KEY NOT NULL,
	"cron" text NOT NULL,
	"timezone" text NOT NULL,
	"catch_up" text NOT NULL,
	"kind" text NOT NULL,
	"workflow_name" text NOT NULL,
	"definition_hash" text NOT NULL,
	"input" jsonb,
	"first_seen" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen" timestamp with time zone DEFAULT now() NOT NULL,
	"last_tick" timestamp with time zone,
	"last_run_id" text,
	"last_run_at" timestamp with time zone,
	"next_tick" timestamp with time zone,
	CONSTRAINT "schedules_catch_up_check" CHECK ("baton"."schedules"."catch_up" in ('none', 'latest', 'all')),
	CONSTRAINT "schedules_kind_check" CHECK ("baton"."schedules"."kind" in ('workflow', 'task'))
);
--> statement-breakpoint
ALTER TABLE "baton"."workers" ADD COLUMN "schedules" text[] DEFAULT '{}'::text[] NOT NULL;