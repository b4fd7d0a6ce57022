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
 * Keys (docs/configuration.md is the user's reference):
 *   "root": string, "runroot": string, "plugin_dirs": [string],
 *   "defaults": {"isolation": string, "storage": string, "network": string},
 *   "log": {"level": "error"|"warning"|"notice"|"info"|"debug",
 *           "format": "text"|"json"},
 *   "api": {"listeners": [string], "tls": {"ca": string, "cert": string,
 *           "key": string}},
 *   "drivers": {"<driver name>": {...}}   (free-form, handed to that driver)
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
    char *path;           /* file it was read from, NULL for built-in defaults */
    char *root;           /* absolute */
    char *runroot;        /* absolute */
    char **plugin_dirs;   /* strv; config's dirs, then $BERTH_PLUGIN_PATH's */
    char *default_isolation;
    char *default_storage;
    char *default_network;
    uint32_t log_level;   /* BERTH_LOG_* */
    char *log_format;     /* "text" or "json" */
    char **api_listeners; /* strv of "unix://PATH" or "tcp://HOST:PORT" */
    char *tls_ca, *tls_cert, *tls_key; /* NULL when not set */
    json_t *drivers;      /* object (owned); per-driver sections */
} berth_config_t;

/* Overrides from the command line or the embedding application; NULL members are unset. */
typedef struct berth_config_overrides {
    const char *config_path;
    const char *root;
    const char *runroot;
    const char *plugin_path; /* colon-separated, appended after the config's dirs */
    int ignore_env;          /* do not read BERTH_* variables (tests, embedders) */
} berth_config_overrides_t;

/*
 * Build the configuration from defaults, file, environment and @ov (may be
 * NULL). On failure nothing is allocated and err says what is wrong in one
 * line, e.g. "/etc/berth/berth.json:4:12: invalid JSON: ..." or
 * "/etc/berth/berth.json: 'root' must be a string, not an integer".
 */
int berth__config_load(const berth_config_overrides_t *ov, berth_config_t **ret_cfg,
                       berth_err_t *err);

/*
 * Parse and validate config text (the file's contents) into a config,
 * without defaults from the environment; @origin names it in errors.
 */
int berth__config_parse(const char *text, size_t len, const char *origin, berth_config_t **ret_cfg,
                        berth_err_t *err);

/* The config as the JSON document it would be written as (a new reference). */
json_t *berth__config_to_json(const berth_config_t *cfg);

void berth__config_free(berth_config_t *cfg);

/* Log level by name ("info") and back; -EINVAL for an unknown name. */
int berth__log_level_parse(const char *name, uint32_t *ret_level);
const char *berth__log_level_name(uint32_t level);

#endif /* BERTH_CONFIG_H */
