/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth: the command-line front end of libberth. It works without a daemon:
 * every command opens the engine on the chosen root, does its work and
 * exits. Global options come before the command, as with docker and podman.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "berth-build-config.h"
#include "cli.h"

static const struct cli_command commands[] = {
    { "attach", cmd_attach, "Attach to a running container" },
    { "create", cmd_create, "Create a container" },
    { "events", cmd_events, "Show the engine's events, past and as they happen" },
    { "exec", cmd_exec, "Run a command in a running container" },
    { "history", cmd_history, "Show the history of an image" },
    { "image", cmd_image, "Manage images (ls, inspect, prune, rm, tag, pull, load, save)" },
    { "images", cmd_images, "List images" },
    { "info", cmd_info, "Show the engine's configuration, store, drivers and host features" },
    { "inspect", cmd_inspect, "Show containers or images in detail (JSON)" },
    { "kill", cmd_kill, "Send a signal to containers" },
    { "load", cmd_load, "Load images from a tar archive or an OCI layout" },
    { "login", cmd_login, "Log in to a registry" },
    { "logout", cmd_logout, "Log out from a registry" },
    { "logs", cmd_logs, "Show a container's output" },
    { "network", cmd_network,
      "Manage networks (create, ls, inspect, rm, connect, disconnect, prune)" },
    { "pause", cmd_pause, "Freeze containers" },
    { "plugins", cmd_plugins, "List loaded driver plugins and refused modules" },
    { "port", cmd_port, "List a container's published ports" },
    { "ps", cmd_ps, "List containers" },
    { "pull", cmd_pull, "Download an image from a registry" },
    { "rm", cmd_rm, "Remove containers" },
    { "rmi", cmd_rmi, "Remove images" },
    { "run", cmd_run, "Create and run a container" },
    { "save", cmd_save, "Save images to a tar archive" },
    { "start", cmd_start, "Start containers" },
    { "stats", cmd_stats, "Show containers' resource usage" },
    { "stop", cmd_stop, "Stop containers" },
    { "system", cmd_system, "Manage berth (df: disk usage)" },
    { "tag", cmd_tag, "Give an image another name" },
    { "top", cmd_top, "List a container's processes" },
    { "unpause", cmd_unpause, "Thaw paused containers" },
    { "version", cmd_version, "Show the version" },
    { "volume", cmd_volume, "Manage volumes (create, ls, inspect, rm, prune)" },
    { "wait", cmd_wait, "Wait for containers to stop; print exit codes" },
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: berth [OPTIONS] COMMAND [ARG...]\n"
            "\n"
            "A container engine with pluggable isolation, storage, network and image drivers.\n"
            "\n"
            "Options:\n"
            "      --root DIR      metadata and storage (default %s, or $BERTH_ROOT)\n"
            "      --runroot DIR   runtime state (default %s, or $BERTH_RUNROOT)\n"
            "      --config FILE   config file (default %s/berth.json, or $BERTH_CONFIG)\n"
            "      --debug         show driver log lines down to debug level\n"
            "  -v, --version       show the version and exit\n"
            "  -h, --help          show this help and exit\n"
            "\n"
            "Commands:\n",
            BERTH_DEFAULT_ROOT, BERTH_DEFAULT_RUNROOT, BERTH_SYSCONFDIR);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'berth COMMAND --help' for more about a command.\n");
}

int main(int argc, char **argv)
{
    enum { OPT_ROOT = 256, OPT_RUNROOT, OPT_CONFIG, OPT_DEBUG };
    static const struct option longopts[] = {
        { "root", required_argument, NULL, OPT_ROOT },
        { "runroot", required_argument, NULL, OPT_RUNROOT },
        { "config", required_argument, NULL, OPT_CONFIG },
        { "debug", no_argument, NULL, OPT_DEBUG },
        { "version", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct cli_globals g = { 0 };
    int c;

    opterr = 0;
    /* '+': stop at the command, whose own options follow it. */
    while ((c = getopt_long(argc, argv, "+vh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_ROOT:
            g.root = optarg;
            break;
        case OPT_RUNROOT:
            g.runroot = optarg;
            break;
        case OPT_CONFIG:
            g.config = optarg;
            break;
        case OPT_DEBUG:
            g.debug = 1;
            break;
        case 'v':
            printf("berth version %s\n", BERTH_VERSION);
            return CLI_EXIT_OK;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        case ':':
        default:
            if (optopt >= OPT_ROOT && optopt <= OPT_CONFIG)
                cli_error("option '%s' needs a value", argv[optind - 1]);
            else
                cli_error("unknown option '%s' (see 'berth --help')", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[optind], "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[optind], commands[i].name) == 0)
            return commands[i].fn(&g, argc - optind, argv + optind);
    cli_error("unknown command '%s' (see 'berth --help')", argv[optind]);
    return CLI_EXIT_USAGE;
}
