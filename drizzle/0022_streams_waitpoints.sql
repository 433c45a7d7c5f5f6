CREATE TABLE "baton"."stream_frames" (
	"workflow_id" text NOT NULL,
	"seq" bigint NOT NULL,
	"task_key" text NOT NULL,
	"attempt" integer NOT NULL,
	"frame" jsonb,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "stream_frames_pkey" PRIMARY KEY("workflow_id","seq")
);
--> statement-breakpoint
CREATE TABLE "baton"."waitpoint_uses" (
	"nonce" text PRIMARY KEY NOT NULL,
	"workflow_id" text NOT NULL,
	"event" text NOT NULL,
	"used_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "waitpoint_uses_workflow_idx" ON "baton"."waitpoint_uses" USING btree ("workflow_id");