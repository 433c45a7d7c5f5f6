CREATE TABLE "baton"."stream_frames" (
	"workflow_id" text NOT NULL,
	"seq" bigint NOT NULL,
	"task_key" text NOT NULL,
	"attempt" integer NOT NULL,
	"frame" jsonb,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "stream_frames_pkey" PRIMARY KEY("workflow_id","seq")
);
