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
#include <stdio.h>

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
/*
 * After getopt_long() refused an option of command argv[0]: say which, in
 * one line ("--format needs a value" when @needs_value names the option that
 * lacked its argument, else "bad option '-x'"), and return CLI_EXIT_USAGE.
 */
int cli_bad_option(char **argv, int optind, const char *needs_value);
/*
 * Whether every argument of command argv[0] is UTF-8: they travel as JSON
 * strings, which can't hold anything else. If not, says which one (its
 * bad bytes shown as '?') and returns -1.
 */
int cli_args_utf8(int argc, char **argv);

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
/*
 * The same for an inspect command, which also takes -f/--format FORMAT
 * (*@ret_format, NULL without): a docker-style template (cli-template.h),
 * checked here, or "json". 0, 1 after --help, -1 after reporting a bad
 * option or template.
 */
int cli_parse_inspect_args(int argc, char **argv, const char *usage, const char **ret_format);
/* @format checked as cli_parse_inspect_args does: 0, or -1 after saying what is wrong. */
int cli_check_inspect_format(const char *cmd, const char *format);
/*
 * Print what an inspect command found (@arr): the JSON array without
 * @format (or with "json"), else @format rendered for each element, one
 * per line, as docker inspect -f does. -1 after reporting a failure.
 */
int cli_print_inspect(const char *cmd, json_t *arr, const char *format);
/*
 * A list command's --format template over its rows (objects with docker's
 * field names for that list: .ID, .Names, .Status for ps): one rendered
 * line per row, or with "table TEMPLATE" a header line (the template over
 * @header, which maps each field to its column title) and the columns
 * that \t separates aligned as docker's table writer does. -1 after
 * reporting a failure.
 */
int cli_print_rows(const char *cmd, const char *format, json_t *header, json_t *rows);
/* Whether @format is a template (not table, text or json); -1 after reporting a bad one. */
int cli_format_template(const char *cmd, const char *format);

/* --pull of `create` and `run`: when to pull the image (docker's policies). */
enum cli_pull_policy { CLI_PULL_MISSING, CLI_PULL_ALWAYS, CLI_PULL_NEVER };

/* What `create` and `run` parsed: a Docker create body and the flags the CLI acts on. */
struct cli_create {
    json_t *body; /* owned */
    const char *name;
    const char *image; /* the IMAGE operand (borrowed from argv); NULL with --rootfs */
    enum cli_pull_policy pull;
    int detach, interactive, tty, auto_remove;
};
extern const char cli_create_options_help[];
/*
 * Parse create/run options and the command; returns 1 when help was
 * printed, 0 on success (ret->body set), -1 on a usage error (reported).
 */
int cli_parse_create(int argc, char **argv, int is_run, const char *usage, struct cli_create *ret);
/*
 * Create the container @c describes, pulling its image first with --pull
 * always, or when it is missing (docker's default): "Unable to find image
 * 'x:latest' locally", the pull's progress on stderr, then one more try.
 * With @run, its monitor is also started waiting (berth_container_create_run):
 * berth_container_start(e, id, 0) then runs it. Prints errors itself;
 * returns 0 (ret_id set) or the failure's negative errno, ret_id then set
 * when the container exists all the same (its monitor failed).
 */
int cli_create_container(berth_engine_t *e, const struct cli_create *c, int run, char ret_id[65]);

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
int cmd_events(const struct cli_globals *g, int argc, char **argv);

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

/* ---- images (cmd-pull.c ... cmd-image.c, helpers in cli-image.c and cli-progress.c) ---- */

int cmd_pull(const struct cli_globals *g, int argc, char **argv);
int cmd_load(const struct cli_globals *g, int argc, char **argv);
int cmd_save(const struct cli_globals *g, int argc, char **argv);
int cmd_images(const struct cli_globals *g, int argc, char **argv);
int cmd_rmi(const struct cli_globals *g, int argc, char **argv);
int cmd_tag(const struct cli_globals *g, int argc, char **argv);
int cmd_history(const struct cli_globals *g, int argc, char **argv);
int cmd_login(const struct cli_globals *g, int argc, char **argv);
int cmd_logout(const struct cli_globals *g, int argc, char **argv);
/* The `image` and `system` command groups; `image inspect|prune` and `system df` live there too. */
int cmd_image(const struct cli_globals *g, int argc, char **argv);
int cmd_system(const struct cli_globals *g, int argc, char **argv);
int cmd_image_inspect(const struct cli_globals *g, int argc, char **argv);
int cmd_image_prune(const struct cli_globals *g, int argc, char **argv);
int cmd_system_df(const struct cli_globals *g, int argc, char **argv);
/* The `volume` command group: create, ls, inspect, rm, prune (cmd-volume.c). */
int cmd_volume(const struct cli_globals *g, int argc, char **argv);
/*
 * Docker's confirmation for prune: print @warning and the question, read the
 * answer from stdin, terminal or not; 1 only for y or Y.
 */
int cli_confirm(const char *warning);

/*
 * Docker's human size (go-units HumanSizeWithPrecision): 1000-based units
 * B, kB, MB, GB, ... and @precision significant digits as printf's %g
 * gives them ("4.26MB" with 3, as lists show sizes; "4.261MB" with 4, as
 * totals do). Negative sizes print as 0B.
 */
void cli_human_size(int64_t bytes, int precision, char *buf, size_t len);

/* "2 weeks ago" for @created (unix seconds) seen at @now; "N/A" when @created is unknown (<= 0). */
void cli_created_since(int64_t created, int64_t now, char *buf, size_t len);

/*
 * A text table laid out as the docker CLI's (Go's tabwriter with minimum
 * width 10 and padding 3): every column but the last is as wide as its
 * widest cell plus 3, and at least 10; widths count characters, not bytes.
 */
struct cli_table {
    size_t ncols, nrows, cap;
    char **cells; /* nrows * ncols copies, row by row */
};
void cli_table_init(struct cli_table *t, size_t ncols);
/* Append a row of ncols cells (copied; NULL prints as ""). 0, or -1 when out of memory. */
int cli_table_add(struct cli_table *t, const char *const *row);
void cli_table_print(const struct cli_table *t, FILE *out);
/* Free the cells; the table can be used again after cli_table_init(). */
void cli_table_release(struct cli_table *t);

/*
 * @s cut to @max characters (not bytes), the last replaced by "…" when
 * cut, as docker truncates commands. @buf must hold 4 * @max + 1 bytes.
 */
const char *cli_ellipsis(const char *s, size_t max, char *buf, size_t len);

/*
 * An image name as docker shows it, without validating it (the engine
 * does): "busybox" gives full "docker.io/library/busybox:latest" and
 * familiar "busybox:latest"; "localhost:5000/app@sha256:..." keeps its
 * registry and digest. "latest" is added only when neither a tag nor a
 * digest was given; *ret_tagged (may be NULL) tells whether one was.
 * Either buffer may be NULL. Returns 0, or -1 when a buffer is too small.
 */
int cli_image_names(const char *name, char *full, size_t full_len, char *familiar,
                    size_t familiar_len, int *ret_tagged);

/* Split a familiar "repo:tag" at its tag's colon (after the last '/'); tag "" when none. */
void cli_split_repo_tag(const char *ref, char *repo, size_t repo_len, const char **ret_tag);

/*
 * A private spool directory for `load` from stdin and `save` to stdout:
 * <root>/tmp/<what>-XXXXXX, or under $TMPDIR (else /tmp) when that can't
 * be made. Until cli_spool_remove(), SIGINT, SIGTERM, SIGHUP and SIGPIPE remove
 * it (and the files in it) before the process dies. One at a time.
 * Prints its own error; 0 or -1.
 */
int cli_spool_create(berth_engine_t *e, const char *what, char *ret_dir, size_t len);
void cli_spool_remove(void);

/* Copy @in_fd to @out_fd until EOF; 0, or -errno of the failed read (*ret_in 1) or write. */
int cli_copy_fd(int in_fd, int out_fd, int *ret_in);

/*
 * Progress of a pull or load as the docker CLI shows it. On a terminal, one
 * line per layer redrawn in place ("<id>: Downloading [==>  ] 1.2MB/4.5MB
 * 3.1MB/s"); otherwise one line per status change, leaving out the
 * statuses that count bytes (Downloading, Extracting, Loading layer), as
 * docker does. Lines without a layer id are printed as they come.
 */
struct cli_progress;
/* A renderer writing to @out (a terminal or not, as isatty says). NULL when out of memory. */
struct cli_progress *cli_progress_new(FILE *out);
/* The berth_progress_fn: @userdata is the struct cli_progress. */
void cli_progress_event(void *userdata, const berth_progress_t *ev);
void cli_progress_free(struct cli_progress *p);

/* Flags for cli_pull(). */
#define CLI_PULL_F_QUIET       0x1u /* no progress */
#define CLI_PULL_F_DEFAULT_TAG 0x2u /* say "Using default tag: latest" when @name has no tag */
/*
 * Pull @name (@platform may be NULL; @auth_json: credentials as
 * berth_image_opts_t takes them, NULL for the stored ones) with its
 * progress on @out. Prints the
 * error itself; returns 0 (ret_id, which may be NULL, set) or the negative errno.
 */
int cli_pull(berth_engine_t *e, const char *name, const char *platform, const char *auth_json,
             FILE *out, uint32_t flags, char ret_id[72]);

/* ---- networks (cmd-network.c, cmd-port.c; value parsers in cli-ports.c) ---- */

/* The `network` command group: ls, create, rm, inspect, connect, disconnect, prune. */
int cmd_network(const struct cli_globals *g, int argc, char **argv);
/* `berth port CONTAINER [PORT]`: the published ports, from inspect's NetworkSettings.Ports. */
int cmd_port(const struct cli_globals *g, int argc, char **argv);

/*
 * The parsers below write a one-line reason into @errbuf (@len bytes; may
 * be NULL) and return -1 for a value they refuse; nothing is added then.
 */

/*
 * One -p/--publish value, docker's "[IP:][HOSTPORT:]CTRPORT[/PROTO]": IP an
 * IPv4 address or a bracketed IPv6 one ("[::1]:8080:80"); HOSTPORT empty or
 * absent for an ephemeral port ("-p 80", "-p 127.0.0.1::80"); PROTO tcp
 * (default), udp or sctp; ranges "8000-8001:80-81" (same length) give one
 * binding per port, and a host range for one container port
 * ("8000-8010:80") is passed on for the engine to choose from. Appends
 * {"HostIp", "HostPort"} to @bindings["80/tcp"] (HostConfig.PortBindings)
 * and sets @exposed["80/tcp"] = {} (Config.ExposedPorts). 0 or -1.
 */
int cli_parse_publish(const char *text, json_t *bindings, json_t *exposed, char *errbuf,
                      size_t len);
/* One --expose value, "PORT[-PORT][/PROTO]", into @exposed (Config.ExposedPorts). 0 or -1. */
int cli_parse_expose(const char *text, json_t *exposed, char *errbuf, size_t len);
/*
 * One --add-host value, "HOST:IP" or "HOST=IP" (IP may be bracketed IPv6 or
 * docker's "host-gateway"), checked and written to @out as the "HOST:IP"
 * entry HostConfig.ExtraHosts holds. 0 or -1.
 */
int cli_parse_add_host(const char *text, char *out, size_t out_len, char *errbuf, size_t len);
/* @text is an address of @family (AF_INET or AF_INET6); @opt names the option in the message. */
int cli_check_ip(const char *opt, const char *text, int family, char *errbuf, size_t len);
/*
 * Print NetworkSettings.Ports (@ports: {"80/tcp": [{"HostIp", "HostPort"}]
 * or null}) as `docker port` does, sorted by port: "80/tcp -> 0.0.0.0:32768"
 * per binding, or with @want ("80" meaning 80/tcp, "53/udp") only that
 * port's "0.0.0.0:32768" lines; IPv6 addresses in brackets. Returns the
 * number of lines, or -1 for a malformed @want or none published for it.
 */
int cli_port_print(json_t *ports, const char *want, FILE *out, char *errbuf, size_t len);
/*
 * The PORTS column of `ps` from a listing's Ports ([{"IP", "PrivatePort",
 * "PublicPort", "Type"}], BERTH_LIST_DETAIL), into @buf (@len bytes, cut if
 * it must be): published ones first, "127.0.0.1:8080->80/tcp", then those
 * only exposed, "53/udp"; runs of consecutive ports as one range
 * ("0.0.0.0:8000-8001->80-81/tcp"); IPv6 addresses in brackets; ", "
 * between. "" for none. 0, or -1 when out of memory.
 */
int cli_ports_column(json_t *ports, char *buf, size_t len);

int cmd_version(const struct cli_globals *g, int argc, char **argv);
int cmd_info(const struct cli_globals *g, int argc, char **argv);
int cmd_plugins(const struct cli_globals *g, int argc, char **argv);

#endif /* BERTH_CLI_H */
