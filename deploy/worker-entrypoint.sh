#!/bin/sh
# Entry point of the GPU grading worker image. Makes per-sandbox cgroups possible inside the container (the memory
# cap that holds with CUDA, and the pids cap), then runs the command (celery ...).
#
# cgroup v2 only lets a cgroup hand controllers to children when no process lives in it, so the worker moves
# itself into a leaf "worker" group first; grading/cgroups.py then creates grading/<sandbox> groups beside it.
# Needs CAP_SYS_ADMIN (docker-compose.yml / worker-gpu.yaml grant it) to remount the container's cgroupfs
# read-write. Without it grading still works, with rlimits instead of cgroups (logged as a warning).
set -u
CG=/sys/fs/cgroup
if [ -f "$CG/cgroup.controllers" ]; then
    [ -w "$CG/cgroup.procs" ] || mount -o remount,rw "$CG" 2>/dev/null || true
    if [ -w "$CG/cgroup.procs" ]; then
        mkdir -p "$CG/worker"
        for pid in $(cat "$CG/cgroup.procs"); do
            echo "$pid" > "$CG/worker/cgroup.procs" 2>/dev/null || true
        done
        echo "+memory +pids" > "$CG/cgroup.subtree_control" 2>/dev/null || true
    fi
fi
exec "$@"
