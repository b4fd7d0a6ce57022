/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth login and logout: registry credentials in docker's credentials file
 * ($DOCKER_CONFIG/config.json), so berth and the docker CLI share them.
 * A login checks the credentials with the registry before storing them.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

#define DOCKER_HUB "https://index.docker.io/v1/"

static const char login_usage[] =
    "Usage: berth login [OPTIONS] [SERVER]\n"
    "\n"
    "Log in to a registry (Docker Hub without SERVER) and keep the credentials in\n"
    "$DOCKER_CONFIG/config.json (default ~/.docker/config.json), as docker does.\n"
    "Asks for what is missing when stdin is a terminal.\n"
    "\n"
    "Options:\n"
    "  -u, --username USER   user name\n"
    "  -p, --password PASS   password (visible to other users: prefer --password-stdin)\n"
    "      --password-stdin  read the password from stdin\n"
    "  -h, --help            show this help\n";

static const char logout_usage[] = "Usage: berth logout [SERVER]\n"
                                   "\n"
                                   "Forget the credentials stored for a registry (Docker Hub\n"
                                   "without SERVER).\n"
                                   "\n"
                                   "Options:\n"
                                   "  -h, --help  show this help\n";

/* The terminal's settings while echo is off, for the signal handler to put back. */
static struct termios saved_tio;
static volatile sig_atomic_t echo_off;

static void restore_echo(int sig)
{
    if (echo_off)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Read one line from stdin into @buf without its newline; 0, or -1 at EOF or on error. */
static int read_line(char *buf, size_t len)
{
    if (!fgets(buf, (int)len, stdin))
        return -1;
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

/* Ask for the password on the terminal with echo off, restored even on ^C. */
static int prompt_password(char *buf, size_t len)
{
    struct sigaction sa = { 0 }, old_int, old_term, old_hup;
    struct termios tio;
    int r;

    fputs("Password: ", stdout);
    fflush(stdout);
    if (tcgetattr(STDIN_FILENO, &saved_tio) < 0)
        return read_line(buf, len);
    sa.sa_handler = restore_echo;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    /* A signal the caller ignores (nohup) stays ignored. */
    if (old_int.sa_handler == SIG_IGN)
        sigaction(SIGINT, &old_int, NULL);
    if (old_term.sa_handler == SIG_IGN)
        sigaction(SIGTERM, &old_term, NULL);
    if (old_hup.sa_handler == SIG_IGN)
        sigaction(SIGHUP, &old_hup, NULL);
    tio = saved_tio;
    tio.c_lflag &= ~(tcflag_t)ECHO;
    tio.c_lflag |= ECHONL;
    echo_off = 1;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio);
    r = read_line(buf, len);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
    echo_off = 0;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    return r;
}

/* Docker's ConvertToHostname: "https://host:5000/v2/" is "host:5000". */
static void server_host(const char *server, char *buf, size_t len)
{
    const char *s = server;

    if (strncmp(s, "http://", 7) == 0)
        s += 7;
    else if (strncmp(s, "https://", 8) == 0)
        s += 8;
    snprintf(buf, len, "%.*s", (int)strcspn(s, "/"), s);
}

int cmd_login(const struct cli_globals *g, int argc, char **argv)
{
    enum { OPT_PASSWORD_STDIN = 256 };
    static const struct option longopts[] = {
        { "username", required_argument, NULL, 'u' },
        { "password", required_argument, NULL, 'p' },
        { "password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char user[256] = "", pass[1024] = "", host[512] = "";
    const char *username = NULL, *password = NULL;
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    int from_stdin = 0, c, r;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+u:p:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'u':
            username = optarg;
            break;
        case 'p':
            password = optarg;
            break;
        case OPT_PASSWORD_STDIN:
            from_stdin = 1;
            break;
        case 'h':
            fputs(login_usage, stdout);
            return CLI_EXIT_OK;
        default:
            if (optopt == 'u' || optopt == 'p')
                cli_error("login: option '-%c' needs a value (see 'berth login --help')", optopt);
            else
                cli_error("login: bad option '%s' (see 'berth login --help')", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (argc - optind > 1) {
        cli_error("login: at most one server (see 'berth login --help')");
        return CLI_EXIT_USAGE;
    }
    if (password && from_stdin) {
        cli_error("login: --password and --password-stdin are mutually exclusive");
        return CLI_EXIT_USAGE;
    }
    if (from_stdin && !username) {
        cli_error("login: --password-stdin needs --username");
        return CLI_EXIT_USAGE;
    }
    if (optind < argc)
        server_host(argv[optind], host, sizeof(host));
    if (password)
        fprintf(stderr,
                "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n");
    if (from_stdin) {
        /* All of stdin, less the line end a here-string or echo adds. */
        size_t n = fread(pass, 1, sizeof(pass) - 1, stdin);
        pass[n] = '\0';
        if (!feof(stdin)) {
            cli_error("login: the password on stdin is too long");
            explicit_bzero(pass, sizeof(pass));
            return CLI_EXIT_FAIL;
        }
        while (n > 0 && (pass[n - 1] == '\n' || pass[n - 1] == '\r'))
            pass[--n] = '\0';
        password = pass;
    }
    if ((!username || !password) && !isatty(STDIN_FILENO)) {
        cli_error("login: can't ask for the %s: stdin is not a terminal (use -u and "
                  "--password-stdin)",
                  username ? "password" : "username");
        return CLI_EXIT_FAIL;
    }
    if (!username) {
        fputs("Username: ", stdout);
        fflush(stdout);
        if (read_line(user, sizeof(user)) < 0 || !*user) {
            cli_error("login: no username given");
            return CLI_EXIT_FAIL;
        }
        username = user;
    }
    if (!password) {
        if (prompt_password(pass, sizeof(pass)) < 0 || !*pass) {
            cli_error("login: no password given");
            return CLI_EXIT_FAIL;
        }
        password = pass;
    }
    /* No store: credentials live outside the root, and checking them needs only the driver. */
    if (cli_open_engine(g, BERTH_ENGINE_F_NO_STORE, &engine) < 0) {
        explicit_bzero(pass, sizeof(pass));
        return CLI_EXIT_FAIL;
    }
    r = berth_registry_login(engine, host[0] ? host : NULL, username, password, &err);
    berth_engine_close(engine);
    explicit_bzero(pass, sizeof(pass));
    if (r < 0) {
        cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
        return CLI_EXIT_FAIL;
    }
    printf("Login Succeeded\n");
    return CLI_EXIT_OK;
}

int cmd_logout(const struct cli_globals *g, int argc, char **argv)
{
    berth_engine_t *engine = NULL;
    berth_err_t err = { 0 };
    char host[512] = "";
    int r = cli_parse_simple_args(argc, argv, logout_usage);

    if (r != 0)
        return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if (argc - optind > 1) {
        cli_error("logout: at most one server (see 'berth logout --help')");
        return CLI_EXIT_USAGE;
    }
    if (optind < argc)
        server_host(argv[optind], host, sizeof(host));
    if (cli_open_engine(g, BERTH_ENGINE_F_NO_STORE | BERTH_ENGINE_F_NO_PLUGINS, &engine) < 0)
        return CLI_EXIT_FAIL;
    r = berth_registry_logout(engine, host[0] ? host : NULL, &err);
    berth_engine_close(engine);
    /* As docker: logging out where one wasn't logged in is not an error. */
    if (r == -ENOENT) {
        printf("Not logged in to %s\n", host[0] ? host : DOCKER_HUB);
        return CLI_EXIT_OK;
    }
    if (r < 0) {
        cli_error("%s", err.msg[0] ? err.msg : strerror(-r));
        return CLI_EXIT_FAIL;
    }
    printf("Removing login credentials for %s\n", host[0] ? host : DOCKER_HUB);
    return CLI_EXIT_OK;
}
