/* SPDX-License-Identifier: Apache-2.0 */
/*
 * From a container record to what isolation drivers run: an OCI runtime
 * spec (config.json, runtime-spec 1.x), with Docker's defaults for what the
 * user left unsaid (capabilities, mounts, masked and read-only paths,
 * environment), and the option parsers behind the CLI's and the API's
 * resource flags.
 *
 * The record's "config" and "host_config" objects use the Docker Engine
 * API's field names (Cmd, Entrypoint, Env, WorkingDir, User, Hostname, Tty,
 * OpenStdin; Memory, MemorySwap, NanoCpus, CpuShares, PidsLimit, Binds,
 * Tmpfs, ReadonlyRootfs, CapAdd, CapDrop, SecurityOpt, Ulimits), so a Docker
 * create body maps onto a record without translation.
 */
#ifndef BERTH_OCISPEC_H
#define BERTH_OCISPEC_H

#include <stdint.h>

#include <jansson.h>

#include <berth/types.h>

typedef struct berth_oci_opts {
    /* Root filesystem path as the spec should name it (driver-relative, e.g. "rootfs"). */
    const char *rootfs_path;
    /* The sandbox's network namespace file; NULL with host_network=0 means a new, empty one. */
    const char *netns_path;
    int host_network;
    /* A directory with the hosts, hostname and resolv.conf bound over the container's /etc/ ones. */
    const char *etc_dir;
    /* Seccomp profile in OCI linux.seccomp form (borrowed); NULL: unconfined. */
    json_t *seccomp;
} berth_oci_opts_t;

/*
 * Build the OCI spec for container record @record (needs "id", "config",
 * "host_config"). Invalid input (an unknown capability, a bind without an
 * absolute destination, a user string that doesn't parse) fails with -EINVAL
 * and a message naming it. *ret_spec is a new reference.
 */
int berth__oci_spec_build(json_t *record, const berth_oci_opts_t *opts, json_t **ret_spec,
                          berth_err_t *err);

/*
 * "512m", "1g", "1024", "2.5GiB"... in bytes, the way docker parses
 * --memory (binary units, case-insensitive, optional "b"/"ib"). -EINVAL for
 * anything else or a negative value.
 */
int berth__parse_bytes(const char *text, int64_t *ret_bytes, berth_err_t *err);

/* "1.5" CPUs as NanoCpus (1500000000). -EINVAL for non-numbers or <= 0. */
int berth__parse_cpus(const char *text, int64_t *ret_nanocpus, berth_err_t *err);

/*
 * Normalise a capability name ("net_admin", "CAP_NET_ADMIN") to the OCI form
 * "CAP_NET_ADMIN" in @buf; "ALL" stays "ALL". -EINVAL for unknown names.
 */
int berth__cap_normalise(const char *name, char *buf, size_t len, berth_err_t *err);

#endif /* BERTH_OCISPEC_H */
