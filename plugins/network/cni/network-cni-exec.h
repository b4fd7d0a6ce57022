/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Running one CNI plugin binary with the CNI 1.0 execution protocol: the
 * command and its arguments in CNI_* environment variables, the network
 * configuration on stdin, the result (or an error object) on stdout.
 */
#ifndef NETWORK_CNI_EXEC_H
#define NETWORK_CNI_EXEC_H

#include <berth/types.h>

/** One invocation; every string is borrowed for the call. */
typedef struct cni_invocation {
    const char *cni_path;     /**< colon-separated directories holding plugin binaries */
    const char *type;         /**< the plugin's "type": a file name in one of those dirs */
    const char *command;      /**< "ADD", "DEL", "CHECK" */
    const char *container_id; /**< CNI_CONTAINERID */
    const char *netns;        /**< CNI_NETNS; "" when the namespace is gone (DEL only) */
    const char *ifname;       /**< CNI_IFNAME */
    const char *config;       /**< the plugin's configuration, written to its stdin */
    unsigned timeout_s;       /**< the plugin is killed when it runs longer */
    const char *path_env;     /**< PATH for the plugin; NULL: the caller's own */
} cni_invocation_t;

/**
 * Find @p type in the colon-separated @p cni_path.
 * @return a new string with the binary's path (free() it), or NULL when absent.
 */
char *network_cni_find_plugin(const char *cni_path, const char *type);

/**
 * Run the plugin inv->type and wait for it.
 * On success (exit status 0) returns 0 and, when @p ret_stdout is not NULL,
 * the plugin's stdout as a new NUL-terminated string (free() it).
 * On failure returns a negative errno and one line in @p err naming the
 * plugin, the command and the plugin's own error message ("msg" and
 * "details" of its CNI error object, or the last line of its stderr):
 * -ENOENT plugin not found, -ETIMEDOUT killed after the timeout, -EIO the
 * plugin reported an error or died.
 */
int network_cni_exec(const cni_invocation_t *inv, char **ret_stdout, berth_err_t *err);

/**
 * Run @p argv (argv[0] an absolute path) with no stdin, stdout captured into
 * a new string (*ret_stdout, may be NULL to discard), the same timeout and
 * descriptor hygiene as plugins. Returns 0 when it exited 0, else a negative
 * errno with the last stderr line in @p err.
 */
int network_cni_run(char *const argv[], unsigned timeout_s, char **ret_stdout, berth_err_t *err);

/** network_cni_run() with @p input (borrowed; NULL: none) written to the program's stdin. */
int network_cni_run_input(char *const argv[], const char *input, unsigned timeout_s,
                          char **ret_stdout, berth_err_t *err);

#endif /* NETWORK_CNI_EXEC_H */
