ALTER TABLE "baton"."tasks" DROP CONSTRAINT "tasks_kind_check";--> statement-breakpoint
ALTER TABLE "baton"."workflows" DROP CONSTRAINT "workflows_status_check";--> statement-breakpoint
ALTER TABLE "baton"."tasks" ADD CONSTRAINT "tasks_kind_check" CHECK ("baton"."tasks"."kind" in ('task', 'sleep', 'event', 'child', 'branch', 'compensate'));--> statement-breakpoint
ALTER TABLE "baton"."workflows" ADD CONSTRAINT "workflows_status_check" CHECK ("baton"."workflows"."status" in ('pending', 'running', 'paused', 'completed', 'failed', 'cancelled', 'compensated'));