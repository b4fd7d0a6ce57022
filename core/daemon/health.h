/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Health checks, run by berthd's supervisor while a container runs, as
 * Docker runs them: Config.Healthcheck (the image's HEALTHCHECK, or
 * docker run's --health-*) gives the test (["CMD", argv...] or
 * ["CMD-SHELL", "command"], run with /bin/sh -c; ["NONE"] disables it),
 * Interval (default 30 s), Timeout (30 s), StartPeriod (0), StartInterval
 * (5 s) and Retries (3), durations in nanoseconds.
 *
 * The probe is an exec in the container (berth_container_exec) whose
 * stream is read on the loop, never blocking it. Exit 0 is healthy; any
 * other exit, or no exit within the timeout, is a failure; Retries
 * failures in a row make the container unhealthy, and failures within the
 * start period do not count. Each result goes to the store with
 * berth_container_set_health (the last 5 probes, output cut at 4 KiB), so
 * inspect and ps show it whatever process asks.
 *
 * Not done: a probe that outlives its timeout keeps running in the
 * container (the monitor has no call to kill an exec yet).
 */
#ifndef BERTH_DAEMON_HEALTH_H
#define BERTH_DAEMON_HEALTH_H

#include <jansson.h>
#include <uv.h>

#include <berth/engine.h>

typedef struct bd_health bd_health_t;

/*
 * Start probing container @id per @inspect's Config.Healthcheck; NULL when
 * it has none (or NONE). Records "starting" at once.
 */
bd_health_t *bd_health_start(uv_loop_t *loop, berth_engine_t *e, const char *id, json_t *inspect);
/* Stop probing (the container ended or went away); frees @h once its handles closed. */
void bd_health_stop(bd_health_t *h);

#endif /* BERTH_DAEMON_HEALTH_H */
