/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Engine configuration: one JSON file (config/berth.json is the shipped
 * default), validated strictly before anything starts.
 *
 * Precedence, lowest first: built-in defaults, the config file, environment
 * (BERTH_ROOT, BERTH_RUNROOT, BERTH_PLUGIN_PATH), explicit options (--root,
 * --runroot). The file is the one named by --config, else $BERTH_CONFIG,
 * else <sysconfdir>/berth/berth.json when it exists, else none (defaults).
 * A file that was named explicitly must exist.
 *
 * Details of the precedence:
 *  - An empty BERTH_* variable counts as unset; an empty override is -EINVAL.
 *  - Root and runroot from the environment or the overrides may be relative:
 *    they are made absolute against the cwd and normalised lexically ("..",
 *    ".", "//", trailing "/"; symlinks are not resolved, the dir need not
 *    exist). Paths in the file must be absolute and are normalised the same way.
 *  - Plugin dirs: the file's "plugin_dirs" (default [BERTH_PLUGINSDIR]), then
 *    the dirs of the override's plugin_path, or else of $BERTH_PLUGIN_PATH (the
 *    override replaces the variable, as --root replaces $BERTH_ROOT); empty
 *    parts and dirs already listed are skipped.
 *  - When the file does not set "api.listeners", the one listener is
 *    unix://<final runroot>/berth.sock, so instances with different runroots
 *    never share a socket.
 *  - Cross-key rules: api.tls needs all of ca, cert and key, and a tcp://
 *    listener needs api.tls (the TCP API is mutual TLS only).
 *
 * Keys (docs/configuration.md is the user's reference):
 *   "root": string, "runroot": string, "plugin_dirs": [string],
 *   "defaults": {"isolation": string, "storage": string, "network": string},
 *   "log": {"level": "error"|"warning"|"notice"|"info"|"debug",
 *           "format": "text"|"json"},
 *   "api": {"listeners": [string], "tls": {"ca": string, "cert": string,
 *           "key": string}},
 *   "drivers": {"<driver name>": {...}}   (free-form, handed to that driver)
 *   "events": {"max": integer >= 1}     (events kept in the store)
 * Any other key is an error naming it ("unknown key 'log.levle'"); a value
 * of the wrong type names the key and both types; malformed JSON names the
 * file, line and column.
 */
#ifndef BERTH_CONFIG_H
#define BERTH_CONFIG_H

#include <stdint.h>

#include <jansson.h>

#include <berth/types.h>

typedef struct berth_config {
    char *path;         /* file it was read from, NULL for built-in defaults */
    char *root;         /* absolute */
    char *runroot;      /* absolute */
    char **plugin_dirs; /* strv; config's dirs, then $BERTH_PLUGIN_PATH's */
    char *default_isolation;
    char *default_storage;
    char *default_network;
    uint32_t log_level;                /* BERTH_LOG_* */
    char *log_format;                  /* "text" or "json" */
    char **api_listeners;              /* strv of "unix://PATH" or "tcp://HOST:PORT" */
    char *tls_ca, *tls_cert, *tls_key; /* NULL when not set */
    json_t *drivers;                   /* object (owned); per-driver sections */
    uint64_t events_max;               /* events kept in the store (newest first) */
    json_t *address_pools;             /* networks.address_pools, NULL for Docker's default pools */
} berth_config_t;

/* Default of "events.max": as the store's own default (store.h). */
#define BERTH_CONFIG_EVENTS_MAX 10000

/* Overrides from the command line or the embedding application; NULL members are unset. */
typedef struct berth_config_overrides {
    const char *config_path;
    const char *root;
    const char *runroot;
    const char *plugin_path; /* colon-separated, appended after the config's dirs */
    int ignore_env;          /* do not read BERTH_* variables (tests, embedders) */
    /* When no file is named, use the built-in defaults instead of looking for
     * <sysconfdir>/berth/berth.json (tests must not pick up an installed file). */
    int no_default_file;
} berth_config_overrides_t;

/*
 * Build the configuration from defaults, file, environment and @ov (may be
 * NULL). On failure nothing is allocated and err says what is wrong in one
 * line, e.g. "/etc/berth/berth.json:4:12: invalid JSON: ..." or
 * "/etc/berth/berth.json: 'root' must be a string, not an integer".
 * Messages name the file as it was given; cfg->path holds it made absolute.
 * Returns 0; -EINVAL for a bad file or override; -ENOENT (or another -errno
 * from open/read, -EISDIR, -EFBIG over 4 MiB) for a file that can't be read:
 * "config file X: No such file or directory"; -ENOMEM.
 */
int berth__config_load(const berth_config_overrides_t *ov, berth_config_t **ret_cfg,
                       berth_err_t *err);

/*
 * Parse and validate config text (the file's contents) into a config,
 * without defaults from the environment; @origin names it in errors and is
 * copied to cfg->path (NULL: errors say "<config>", path stays NULL).
 * @text need not be NUL-terminated. Returns 0, -EINVAL or -ENOMEM.
 */
int berth__config_parse(const char *text, size_t len, const char *origin, berth_config_t **ret_cfg,
                        berth_err_t *err);

/*
 * The config as the JSON document it would be written as (a new reference,
 * NULL on allocation failure): every key with its effective value, api.tls
 * only when set, "path" not included. It parses back to the same config.
 */
json_t *berth__config_to_json(const berth_config_t *cfg);

void berth__config_free(berth_config_t *cfg);

/*
 * Log level by name ("info") and back; -EINVAL for an unknown name (exact,
 * lower case). The name of a level outside error..debug is clamped to the
 * nearest ("error" for syslog's emerg..crit), never NULL.
 */
int berth__log_level_parse(const char *name, uint32_t *ret_level);
const char *berth__log_level_name(uint32_t level);

#endif /* BERTH_CONFIG_H */
