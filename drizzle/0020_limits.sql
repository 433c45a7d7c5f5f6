CREATE TABLE "baton"."rate_log" (
	"name" text NOT NULL,
	"key" text NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"n" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "baton"."task_limits" (
	"name" text PRIMARY KEY NOT NULL,
	"concurrency" integer,
	"concurrency_keyed" boolean DEFAULT false NOT NULL,
	"rate" integer,
	"rate_period_ms" integer,
	"rate_keyed" boolean DEFAULT false NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "baton"."tasks" DROP CONSTRAINT "tasks_status_check";--> statement-breakpoint
ALTER TABLE "baton"."tasks" ADD COLUMN "limit_key" text;--> statement-breakpoint
CREATE INDEX "rate_log_idx" ON "baton"."rate_log" USING btree ("name","key","at","n");--> statement-breakpoint
CREATE INDEX "tasks_queued_idx" ON "baton"."tasks" USING btree ("name","limit_key","ready_key") WHERE "baton"."tasks"."status" = 'queued';--> statement-breakpoint
CREATE INDEX "tasks_queued_name_idx" ON "baton"."tasks" USING btree ("name","ready_key") WHERE "baton"."tasks"."status" = 'queued';--> statement-breakpoint
CREATE INDEX "tasks_admitted_idx" ON "baton"."tasks" USING btree ("name","limit_key") WHERE "baton"."tasks"."limit_key" is not null and "baton"."tasks"."status" in ('ready', 'running');--> statement-breakpoint
ALTER TABLE "baton"."tasks" ADD CONSTRAINT "tasks_status_check" CHECK ("baton"."tasks"."status" in ('waiting', 'queued', 'ready', 'running', 'completed', 'failed', 'cancelled'));