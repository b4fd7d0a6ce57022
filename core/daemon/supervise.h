/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berthd's supervisor: restart policies (HostConfig.RestartPolicy: "no",
 * "on-failure[:N]", "always", "unless-stopped"), applied as Docker applies
 * them, to every container in the store, whoever started it.
 *
 * - A running container with a policy is watched through its monitor's
 *   wait socket (berth_container_wait_begin): its exit is known at once,
 *   without polling, and never blocks the loop.
 * - At an exit: nothing if the container was stopped by hand (the record's
 *   ManualStop, set by stop and kill) or was removed; otherwise always and
 *   unless-stopped restart it, on-failure restarts it when the exit code is
 *   not 0 and RestartCount is below the maximum (0: no maximum). The
 *   restart waits a back-off: 100 ms, doubled after each restart that ran
 *   less than 10 s, at most 60 s, back to 100 ms after a longer run.
 * - When berthd starts, containers that exited while no berthd ran are
 *   started as Docker's daemon start does: always ones (even after a stop
 *   by hand), unless-stopped ones not stopped by hand, on-failure ones that
 *   failed and have retries left.
 * - A rescan each second finds containers started elsewhere (the berth
 *   CLI) and ones that appeared or went away.
 *
 * Restarts go through berth_container_start(BERTH_START_POLICY), which
 * counts them in the record's RestartCount (docker inspect shows it).
 *
 * The same watch runs a running container's health checks (health.h),
 * from its start (seen by berthd) to its exit.
 */
#ifndef BERTH_DAEMON_SUPERVISE_H
#define BERTH_DAEMON_SUPERVISE_H

#include <uv.h>

#include <berth/engine.h>

typedef struct bd_supervisor bd_supervisor_t;

/* Supervise the containers of @e on @loop; the first scan runs at once. */
int bd_supervisor_new(uv_loop_t *loop, berth_engine_t *e, bd_supervisor_t **ret);
/* A container berthd just started: watch it now rather than at the next rescan. */
void bd_supervisor_watch(bd_supervisor_t *s, const char *id);
/* Stop every watch; the handles close on the loop, which frees the rest. */
void bd_supervisor_close(bd_supervisor_t *s);

#endif /* BERTH_DAEMON_SUPERVISE_H */
