CREATE SCHEMA IF NOT EXISTS "baton";
--> statement-breakpoint
CREATE SEQUENCE "baton"."epoch_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1;--> statement-breakpoint
CREATE TABLE "baton"."definitions" (
	"name" text NOT NULL,
	"hash" text NOT NULL,
	"kind" text NOT NULL,
	"graph" jsonb NOT NULL,
	"plan" jsonb NOT NULL,
	"first_seen" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "definitions_pkey" PRIMARY KEY("name","hash"),
	CONSTRAINT "definitions_kind_check" CHECK ("baton"."definitions"."kind" in ('workflow', 'task'))
);
--> statement-breakpoint
CREATE TABLE "baton"."events" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "baton"."events_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"workflow_id" text NOT NULL,
	"name" text NOT NULL,
	"payload" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "baton"."history" (
	"workflow_id" text NOT NULL,
	"version" integer NOT NULL,
	"kind" text NOT NULL,
	"detail" jsonb NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "history_pkey" PRIMARY KEY("workflow_id","version")
);
--> statement-breakpoint
CREATE TABLE "baton"."reconciler_ticks" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "baton"."reconciler_ticks_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"worker_id" text NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone DEFAULT now() NOT NULL,
	"reclaimed" integer DEFAULT 0 NOT NULL,
	"failed" integer DEFAULT 0 NOT NULL,
	"promoted" integer DEFAULT 0 NOT NULL,
	"pruned" integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "baton"."signals" (
	"workflow_id" text NOT NULL,
	"kind" text NOT NULL,
	"reason" text,
	"requested_by" text,
	"requested_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "signals_pkey" PRIMARY KEY("workflow_id","kind"),
	CONSTRAINT "signals_kind_check" CHECK ("baton"."signals"."kind" in ('cancel', 'pause'))
);
--> statement-breakpoint
CREATE TABLE "baton"."stats" (
	"key" text PRIMARY KEY NOT NULL,
	"value" bigint DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "baton"."tag_sets" (
	"tags" text[] PRIMARY KEY NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "baton"."tasks" (
	"workflow_id" text NOT NULL,
	"task_key" text NOT NULL,
	"kind" text NOT NULL,
	"name" text NOT NULL,
	"definition_hash" text NOT NULL,
	"status" text NOT NULL,
	"paused" boolean DEFAULT false NOT NULL,
	"priority" integer DEFAULT 0 NOT NULL,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"ready_key" timestamp with time zone,
	"available_at" timestamp with time zone,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer DEFAULT 1 NOT NULL,
	"lease_losses" integer DEFAULT 0 NOT NULL,
	"epoch" bigint DEFAULT 0 NOT NULL,
	"claimed_by" text,
	"claimed_at" timestamp with time zone,
	"lease_expires_at" timestamp with time zone,
	"input" jsonb,
	"output" jsonb,
	"last_error" jsonb,
	"last_failed_worker" text,
	"progress" real,
	"progress_message" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tasks_pkey" PRIMARY KEY("workflow_id","task_key"),
	CONSTRAINT "tasks_status_check" CHECK ("baton"."tasks"."status" in ('waiting', 'ready', 'running', 'completed', 'failed', 'cancelled')),
	CONSTRAINT "tasks_kind_check" CHECK ("baton"."tasks"."kind" in ('task', 'sleep', 'event', 'child', 'branch')),
	CONSTRAINT "tasks_ready_key_check" CHECK ("baton"."tasks"."status" <> 'ready' or "baton"."tasks"."ready_key" is not null),
	CONSTRAINT "tasks_claim_check" CHECK ("baton"."tasks"."status" <> 'running' or ("baton"."tasks"."claimed_by" is not null and "baton"."tasks"."lease_expires_at" is not null))
);
--> statement-breakpoint
CREATE TABLE "baton"."workers" (
	"id" text PRIMARY KEY NOT NULL,
	"host" text NOT NULL,
	"pid" integer NOT NULL,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"concurrency" integer NOT NULL,
	"definitions" text[] DEFAULT '{}'::text[] NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"heartbeat_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "baton"."workflows" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"definition_hash" text NOT NULL,
	"status" text NOT NULL,
	"input" jsonb,
	"output" jsonb,
	"error" jsonb,
	"priority" integer,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"parent_id" text,
	"parent_key" text,
	"state" jsonb NOT NULL,
	"current_step" text,
	"completed_task_count" integer DEFAULT 0 NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	CONSTRAINT "workflows_status_check" CHECK ("baton"."workflows"."status" in ('pending', 'running', 'paused', 'completed', 'failed', 'cancelled')),
	CONSTRAINT "workflows_priority_check" CHECK ("baton"."workflows"."priority" >= 0)
);
--> statement-breakpoint
CREATE INDEX "events_lookup_idx" ON "baton"."events" USING btree ("workflow_id","name","id");--> statement-breakpoint
CREATE INDEX "events_created_idx" ON "baton"."events" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "reconciler_ticks_started_idx" ON "baton"."reconciler_ticks" USING btree ("started_at");--> statement-breakpoint
CREATE INDEX "tasks_ready_idx" ON "baton"."tasks" USING btree ("tags","ready_key") WHERE "baton"."tasks"."status" = 'ready';--> statement-breakpoint
CREATE INDEX "tasks_due_idx" ON "baton"."tasks" USING btree ("available_at") WHERE "baton"."tasks"."status" = 'waiting' and not "baton"."tasks"."paused" and "baton"."tasks"."available_at" is not null;--> statement-breakpoint
CREATE INDEX "tasks_lease_idx" ON "baton"."tasks" USING btree ("lease_expires_at") WHERE "baton"."tasks"."status" = 'running';--> statement-breakpoint
CREATE INDEX "workflows_created_idx" ON "baton"."workflows" USING btree ("created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "workflows_name_created_idx" ON "baton"."workflows" USING btree ("name","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "workflows_parent_idx" ON "baton"."workflows" USING btree ("parent_id") WHERE "baton"."workflows"."parent_id" is not null;--> statement-breakpoint
CREATE VIEW "baton"."claims" AS (select "workflow_id", "task_key", "claimed_by" as "worker_id", "epoch", "claimed_at", "lease_expires_at" as "expires_at" from "baton"."tasks" where "baton"."tasks"."status" = 'running');