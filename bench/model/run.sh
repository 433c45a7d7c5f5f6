#!/usr/bin/env bash
# The job path's ceiling in four table layouts, as plain SQL driven by pgbench (no worker, no
# plpgsql, no JSON): what each layout allows on this machine, to choose between them before
# building one. Shaped on ../shared/model/ (the brief's model), with Baton's own columns, indexes
# and fillfactors, so that which updates stay HOT and which index entries each write adds is Baton's.
#
#   DATABASE_URL=postgres://... bench/model/run.sh [jobs] [batch] [clients] [rounds]
#
# Layouts (setup.sql creates the schema `baton_model` in that database, dropping it first):
#   two-rows         today's: an instance row (baton.workflows' columns and indexes, fillfactor 50)
#                    and a task row; the claim updates the task, the completion updates the task
#                    and the instance (no history row: a one-task job's checkpoint is derived).
#   two-rows-delete  the same, but the completion deletes the task row.
#   one-row          the task's claim fields on the instance row itself: one insert per job, and
#                    both the claim and the completion update that row.
#   job-row          a job in a narrow table of its own (what a one-task job needs of its instance
#                    and its task; the ready and lease indexes and one listing index): one insert,
#                    and both the claim and the completion update that row.
# Prints, per layout and round: the set-based enqueue rate and the claim + fenced completion rate.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
url=${DATABASE_URL:?set DATABASE_URL}
n=${1:-100000}; b=${2:-100}; k=${3:-2}; rounds=${4:-3}
for r in $(seq 1 "$rounds"); do
  for layout in two-rows two-rows-delete one-row job-row; do
    psql -X -q "$url" -f "$here/setup.sql" >/dev/null 2>&1
    case $layout in one-row) enq=enqueue_one;; job-row) enq=enqueue_job;; *) enq=enqueue_two;; esac
    t0=$(date +%s%N)
    for i in $(seq 1 $((n / 5000))); do psql -X -q -At "$url" -c "select baton_model.$enq(5000)" >/dev/null; done
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    psql -X -q "$url" -c "vacuum analyze baton_model.tasks, baton_model.workflows, baton_model.jobs" >/dev/null
    out=$(pgbench -n -f "$here/$layout.sql" -D b="$b" -c "$k" -j "$k" -t $(( n / b / k )) "$url" 2>&1)
    tps=$(echo "$out" | grep -oE 'tps = [0-9.]+' | head -1 | grep -oE '[0-9.]+')
    left=$(psql -X -At "$url" -c "select (select count(*) from baton_model.workflows where status <> 'completed') + (select count(*) from baton_model.jobs where status <> 'completed')")
    printf '%-16s round %s: enqueue %6d jobs/s, claim + complete %6.0f jobs/s (batch %s, %s clients; %s left)\n' \
      "$layout" "$r" $(( n * 1000 / (ms > 0 ? ms : 1) )) "$(echo "$tps * $b" | bc -l)" "$b" "$k" "$left"
  done
done
psql -X -q "$url" -c "drop schema baton_model cascade" >/dev/null 2>&1
