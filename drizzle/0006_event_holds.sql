ALTER TABLE "baton"."events" ADD COLUMN "held_key" text;--> statement-breakpoint
ALTER TABLE "baton"."events" ADD COLUMN "held_epoch" bigint;--> statement-breakpoint
ALTER TABLE "baton"."events" ADD COLUMN "held_until" timestamp with time zone;