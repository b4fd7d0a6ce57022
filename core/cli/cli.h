/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared pieces of the berth CLI: global options, the command table, error
 * reporting and output formats. One file per subcommand (cmd-*.c), each
 * exporting one `cmd_<name>()` entry with the signature below.
 */
#ifndef BERTH_CLI_H
#define BERTH_CLI_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <berth/engine.h>

/* Options given before the command; NULL when not given. */
struct cli_globals {
    const char *root;
    const char *runroot;
    const char *config;
    int debug; /* --debug: show driver log lines down to debug level */
};

/* A subcommand: argv[0] is the command's name; returns the process exit code. */
typedef int (*cli_cmd_fn)(const struct cli_globals *g, int argc, char **argv);

struct cli_command {
    const char *name;
    cli_cmd_fn fn;
    const char *summary;
};

/* Exit codes: Docker's convention for the engine's own failures. */
#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1 /* the operation failed */
#define CLI_EXIT_USAGE 2 /* bad command line */

/* Print "berth: <message>" on stderr as one line. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Open the engine for a command with @flags (BERTH_ENGINE_F_*); prints the error itself. */
int cli_open_engine(const struct cli_globals *g, uint32_t flags, berth_engine_t **ret_engine);

/* Output formats accepted by --format. */
enum cli_format { CLI_FORMAT_TEXT, CLI_FORMAT_JSON };
/* Parse a --format value; prints the error and returns -1 for an unknown one. */
int cli_parse_format(const char *cmd, const char *value, enum cli_format *ret);
/* Print @j as indented JSON on stdout with a final newline. */
int cli_print_json(json_t *j);

/*
 * Parse a subcommand's options that are only --help/-h and --format:
 * returns 1 when help was printed (exit 0), 0 to go on, -1 on a usage error
 * (already reported). @usage is printed for --help.
 */
int cli_parse_simple(int argc, char **argv, const char *usage, int with_format,
                     enum cli_format *ret_format);

/* Parse a command that takes only --help and operands; operands start at optind. */
int cli_parse_simple_args(int argc, char **argv, const char *usage);

/* What `create` and `run` parsed: a Docker create body and the flags the CLI acts on. */
struct cli_create {
    json_t *body; /* owned */
    const char *name;
    int detach, interactive, tty, auto_remove;
};
extern const char cli_create_options_help[];
/*
 * Parse create/run options and the command; returns 1 when help was
 * printed, 0 on success (ret->body set), -1 on a usage error (reported).
 */
int cli_parse_create(int argc, char **argv, int is_run, const char *usage, struct cli_create *ret);

/* Print a container id or summary list and so on; see cmd-container.c. */
int cmd_create(const struct cli_globals *g, int argc, char **argv);
int cmd_ps(const struct cli_globals *g, int argc, char **argv);
int cmd_inspect(const struct cli_globals *g, int argc, char **argv);
int cmd_rm(const struct cli_globals *g, int argc, char **argv);
int cmd_logs(const struct cli_globals *g, int argc, char **argv);
int cmd_run(const struct cli_globals *g, int argc, char **argv);
int cmd_start(const struct cli_globals *g, int argc, char **argv);
int cmd_stop(const struct cli_globals *g, int argc, char **argv);
int cmd_kill(const struct cli_globals *g, int argc, char **argv);
int cmd_wait(const struct cli_globals *g, int argc, char **argv);
int cmd_pause(const struct cli_globals *g, int argc, char **argv);
int cmd_unpause(const struct cli_globals *g, int argc, char **argv);
int cmd_exec(const struct cli_globals *g, int argc, char **argv);
int cmd_stats(const struct cli_globals *g, int argc, char **argv);
int cmd_top(const struct cli_globals *g, int argc, char **argv);
int cmd_attach(const struct cli_globals *g, int argc, char **argv);

/* cli_attach_pump's result when the user detached with ctrl-p ctrl-q. */
#define CLI_DETACHED (-2)
/*
 * Pump an attach or exec stream @fd against the terminal until the exit
 * frame; returns the exit code, CLI_DETACHED, or -1 if the stream ended
 * without an exit frame.
 * @exec_id: NULL for the container itself (signals are then forwarded).
 */
int cli_attach_pump(berth_engine_t *e, const char *ref, const char *exec_id, int fd, int tty,
                    int with_stdin);
/* The exit status for a failed start: 127, 126 or 125, as docker uses them. */
int cli_start_exit_code(int r);

int cmd_version(const struct cli_globals *g, int argc, char **argv);
int cmd_info(const struct cli_globals *g, int argc, char **argv);
int cmd_plugins(const struct cli_globals *g, int argc, char **argv);

#endif /* BERTH_CLI_H */
