/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading the event log (the store's events database, store.h) the way
 * Docker's /events serves it: each stored event turned into Docker's
 * message shape, selected by Docker's filters and by time. The public calls
 * (berth_events_*, berth_event_filter_*, berth_parse_time) are in
 * berth/engine.h; these are the pieces they are made of, for the unit tests.
 */
#ifndef BERTH_EVENTS_H
#define BERTH_EVENTS_H

#include <stdint.h>

#include <jansson.h>

#include <berth/engine.h>

/*
 * A stored event {"seq","time_ns","type","action","id","attributes"} as
 * Docker's message: {"Type","Action","Actor":{"ID","Attributes"},"scope":
 * "local","time","timeNano"}, plus the deprecated "status" (= Action) and
 * "id" (= Actor.ID) for container and image events and "from" (= the image
 * attribute) for container events, as moby fills them. Attribute values
 * that are not strings become their JSON text (Docker's are all strings).
 * NULL when @stored lacks a type, an action or a time, or on ENOMEM.
 */
json_t *berth__event_to_docker(json_t *stored);

/*
 * Whether Docker message @msg passes filter @f (NULL passes everything),
 * with moby's rules: values of one key are alternatives, keys must all
 * match; "container", "volume", "network", "daemon", "plugin", "node",
 * "service", "secret", "config": the actor's exact name or an id prefix;
 * "image": the id or the image name, with or without its tag; "type",
 * "scope": exact; "event": exact, or for a value without ':' also the
 * actions it starts ("exec_start" matches "exec_start: sh"); "label": every
 * value, "key" or "key=value", among the attributes.
 */
int berth__event_filter_match(const berth_event_filter_t *f, json_t *msg);

/* Go's time.ParseDuration: "10m", "1h30m", "1.5s", "-2h", "300ms", "0". */
int berth__parse_duration(const char *text, int64_t *ret_ns);

#endif /* BERTH_EVENTS_H */
