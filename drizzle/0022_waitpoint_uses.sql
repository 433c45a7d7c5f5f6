CREATE TABLE "baton"."waitpoint_uses" (
	"nonce" text PRIMARY KEY NOT NULL,
	"workflow_id" text NOT NULL,
	"event" text NOT NULL,
	"used_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "waitpoint_uses_workflow_idx" ON "baton"."waitpoint_uses" USING btree ("workflow_id");