ALTER TABLE "baton"."events" ALTER COLUMN "workflow_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "baton"."events" ADD COLUMN "key" text;--> statement-breakpoint
ALTER TABLE "baton"."events" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "baton"."events" ADD COLUMN "held_workflow_id" text;--> statement-breakpoint
ALTER TABLE "baton"."tasks" ADD COLUMN "event_key" text;--> statement-breakpoint
CREATE INDEX "events_keyed_idx" ON "baton"."events" USING btree ("name","key","id") WHERE "baton"."events"."key" is not null;--> statement-breakpoint
CREATE INDEX "events_expires_idx" ON "baton"."events" USING btree ("expires_at") WHERE "baton"."events"."expires_at" is not null;--> statement-breakpoint
CREATE INDEX "tasks_keyed_wait_idx" ON "baton"."tasks" USING btree ("name","event_key","created_at") WHERE "baton"."tasks"."status" = 'waiting' and "baton"."tasks"."event_key" is not null;--> statement-breakpoint
ALTER TABLE "baton"."events" ADD CONSTRAINT "events_address_check" CHECK (("baton"."events"."workflow_id" is null) <> ("baton"."events"."key" is null));